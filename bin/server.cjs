#!/usr/bin/env node
// The service's production entry point (Dockerfile, bench): `node bin/server.cjs`.
//
// libuv sizes its thread pool from UV_THREADPOOL_SIZE the first time the pool
// is used, and Node's ES-module loader uses it to read the very first module,
// so an ES module is too late to set it. This CommonJS file sets it first: one
// thread per CPU unless the operator chose otherwise, so argon2 hashes queue in
// the pool instead of time-slicing (src/config/load-config.ts,
// defaultArgon2Concurrency; docs/operations.md "Password hashing").
'use strict';
const { existsSync } = require('node:fs');
const { availableParallelism } = require('node:os');
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');

if (process.env.UV_THREADPOOL_SIZE === undefined) process.env.UV_THREADPOOL_SIZE = String(availableParallelism());
const compiled = join(__dirname, '../dist/server.js');
if (!existsSync(compiled)) {
  process.stderr.write('dist/server.js is missing: run `npm run build` first (or `npm start` for development).\n');
  process.exit(1);
}
import(pathToFileURL(compiled).href);
