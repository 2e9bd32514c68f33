/**
 * The peer of `npm run bench`: Better Auth's get-session, with its default
 * settings, on SQLite (better-sqlite3), served by node:http through Better
 * Auth's own Node handler. Bench-only: installed from bench/peer/package.json,
 * never imported by the service.
 *
 *   PEER_DB=/tmp/x.db PORT=… node bench/peer/server.mjs
 *
 * On start it creates its tables (Better Auth's migrations). GET /readyz
 * answers 200 once listening. Sign up with POST /api/auth/sign-up/email; the
 * session cookie then works on GET /api/auth/get-session.
 */
import { createServer } from 'node:http';
import Database from 'better-sqlite3';
import { betterAuth } from 'better-auth';
import { getMigrations } from 'better-auth/db/migration';
import { toNodeHandler } from 'better-auth/node';

const port = Number(process.env.PORT ?? 0);
const auth = betterAuth({
  database: new Database(process.env.PEER_DB ?? 'better-auth.db'),
  emailAndPassword: { enabled: true },
  secret: process.env.PEER_SECRET ?? 'bench-only-secret-bench-only-secret-0123',
  baseURL: `http://127.0.0.1:${port}`,
  telemetry: { enabled: false },
});
const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

const handler = toNodeHandler(auth);
const server = createServer((req, res) => {
  if (req.url === '/readyz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ready"}');
    return;
  }
  handler(req, res);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
server.listen(port, '127.0.0.1');
