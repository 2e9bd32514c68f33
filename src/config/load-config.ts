import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import type { SecretKey } from '../platform/crypto/secret-box.js';
import { dataRegionProblem, parseDataRegionAllowlist, type DataRegionAllowlist } from './data-region.js';

/**
 * The only reader of `process.env`. `loadConfig(env)` validates every variable
 * of API.md ("Configuration") and reports all problems at once (DESIGN.md rule 4).
 */
export type NodeEnv = 'development' | 'production' | 'test';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type TrustProxy = false | number | string[];

export interface Argon2Params {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export interface Config {
  nodeEnv: NodeEnv;
  port: number;
  host: string;
  publicUrl: URL;
  /** `scheme://host[:port]`, compared with the `Origin` header (CSRF). */
  publicOrigin: string;
  /** True when cookies are `Secure` with the `__Host-` prefix. */
  secureCookies: boolean;
  databaseFile: string;
  dataDir: string;
  /** `null` only outside production: the server then generates a development key. */
  secretsKeys: SecretKey[] | null;
  /**
   * `AUDIT_KEY`: the ring the audit chain's MAC and checkpoint keys derive
   * from (src/audit/audit-keys.ts); `null` = derive them from `secretsKeys`.
   */
  auditKeys: SecretKey[] | null;
  /** Minutes between signed checkpoints of the audit chain head (`AUDIT_CHECKPOINT_INTERVAL_MINUTES`, 0 = none). */
  auditCheckpointIntervalMinutes: number;
  /** Where checkpoints are written (`AUDIT_CHECKPOINT_DIR`, default `<dataDir>/checkpoints`). */
  auditCheckpointDir: string;
  logLevel: LogLevel;
  smtpUrl: string | null;
  mailFrom: string;
  dangerouslyAllowLoopbackIdp: boolean;
  trustProxy: TrustProxy;
  tls: { certFile: string; keyFile: string } | null;
  rateLimitPerIpPerMinute: number;
  bodyLimitBytes: number;
  /** Bounds on how long a client may hold a connection (SECURITY.md "timeouts"); see {@link HttpTimeouts}. */
  httpTimeouts: HttpTimeouts;
  /** `EXPORTS_PER_HOUR`: data exports (GDPR Art. 15/20) one account may request in any hour, both export routes together. */
  exportsPerHour: number;
  session: { idleMinutes: number; absoluteHours: number };
  argon2: Argon2Params;
  /**
   * Admission control of argon2 work (issue 9): at most `maxConcurrent`
   * hashes run at once (default: the CPU count, so they never take the whole
   * libuv pool), at most `maxQueued` wait; past that a request is answered
   * 429 at once instead of queueing without bound.
   */
  argon2Admission: Argon2Admission;
  /** Sessions remembered between two commits (`SESSION_CACHE_SIZE`, 0 = every check reads SQLite); see session-repository.ts. */
  sessionCacheSize: number;
  plansFile: string;
  /** Longest staff grant a request may ask for (SECURITY.md: max 8 h, configurable). */
  staffGrantMaxMinutes: number;
  /**
   * `DATA_REGION_ALLOWLIST`: host suffixes personal data may go to (EU
   * residency); null when unset. SMTP and database hosts are checked here;
   * SSO issuer URLs are for the SSO code to check with `dataRegionProblem`.
   */
  dataRegionAllowlist: DataRegionAllowlist | null;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const NODE_ENVS: readonly NodeEnv[] = ['development', 'production', 'test'];

/**
 * SECURITY.md "timeouts" (no request may hold a connection unboundedly;
 * OWASP Denial of Service Cheat Sheet, slow-headers and slow-body attacks):
 * - `requestTimeoutMs`: the whole request — headers and body — must arrive
 *   within it (Node `server.requestTimeout`), else `408` and the connection
 *   is closed;
 * - `headersTimeoutMs`: the headers must arrive within it (Node
 *   `server.headersTimeout`; at most `requestTimeoutMs`);
 * - `keepAliveTimeoutMs`: an idle keep-alive connection is closed after it;
 * - `idleSocketTimeoutMs`: a socket with no traffic at all for this long is
 *   destroyed, also while a handler runs (Fastify `connectionTimeout`);
 *   twice `requestTimeoutMs`.
 */
export interface HttpTimeouts {
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  idleSocketTimeoutMs: number;
}

export interface Argon2Admission {
  maxConcurrent: number;
  maxQueued: number;
}

/** OWASP Password Storage Cheat Sheet floor for argon2id (SECURITY.md). */
export const ARGON2_FLOOR: Argon2Params = { memoryCost: 19456, timeCost: 2, parallelism: 1 };

export function loadConfig(env: Env, cwd: string = process.cwd()): Readonly<Config> {
  const problems: string[] = [];
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
      return fallback;
    }
    return Number(raw);
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    if (raw === 'true' || raw === '1') return true;
    if (raw === 'false' || raw === '0') return false;
    problems.push(`${name} must be true or false (got "${raw}")`);
    return fallback;
  };

  const nodeEnvRaw = get('NODE_ENV') ?? 'development';
  let nodeEnv: NodeEnv = 'development';
  if ((NODE_ENVS as readonly string[]).includes(nodeEnvRaw)) nodeEnv = nodeEnvRaw as NodeEnv;
  else problems.push(`NODE_ENV must be one of ${NODE_ENVS.join(', ')} (got "${nodeEnvRaw}")`);
  const production = nodeEnv === 'production';

  const port = int('PORT', 3000, 0, 65535);
  const host = get('HOST') ?? '127.0.0.1';

  let publicUrl = new URL(`http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`);
  const publicUrlRaw = get('PUBLIC_URL');
  if (publicUrlRaw !== undefined) {
    try {
      const parsed = new URL(publicUrlRaw);
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('scheme');
      publicUrl = parsed;
    } catch {
      problems.push(`PUBLIC_URL must be an http(s) URL (got "${publicUrlRaw}")`);
    }
  } else if (production) {
    problems.push('PUBLIC_URL is required in production');
  }
  if (production && publicUrl.protocol !== 'https:') problems.push('PUBLIC_URL must be https in production');

  const databaseUrl = get('DATABASE_URL') ?? 'file:./data/cleverom.db';
  let databaseFile = resolve(cwd, 'data/cleverom.db');
  if (databaseUrl.startsWith('file:')) {
    const path = databaseUrl.slice('file:'.length);
    if (path === '') problems.push('DATABASE_URL file: path is empty');
    else databaseFile = resolve(cwd, path);
  } else {
    problems.push(`DATABASE_URL must be a file: URL (SQLite); got a "${databaseUrl.split(':')[0]}:" URL`);
  }
  const dataDir = resolve(databaseFile, '..');

  let secretsKeys: SecretKey[] | null = null;
  const secretsRaw = get('SECRETS_KEY');
  if (secretsRaw !== undefined) {
    const parsed = parseSecretsKey(secretsRaw);
    if (typeof parsed === 'string') problems.push(`SECRETS_KEY ${parsed}`);
    else secretsKeys = parsed;
  } else if (production) {
    problems.push('SECRETS_KEY is required in production (32 random bytes in base64, e.g. `openssl rand -base64 32`)');
  }

  let auditKeys: SecretKey[] | null = null;
  const auditKeyRaw = get('AUDIT_KEY');
  if (auditKeyRaw !== undefined) {
    const parsed = parseSecretsKey(auditKeyRaw);
    if (typeof parsed === 'string') problems.push(`AUDIT_KEY ${parsed}`);
    else auditKeys = parsed;
  }
  const auditCheckpointIntervalMinutes = int('AUDIT_CHECKPOINT_INTERVAL_MINUTES', 10, 0, 24 * 60);
  const auditCheckpointDir = resolve(cwd, get('AUDIT_CHECKPOINT_DIR') ?? resolve(dataDir, 'checkpoints'));

  const logLevelRaw = get('LOG_LEVEL') ?? (nodeEnv === 'test' ? 'silent' : 'info');
  let logLevel: LogLevel = 'info';
  if ((LOG_LEVELS as readonly string[]).includes(logLevelRaw)) logLevel = logLevelRaw as LogLevel;
  else problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${logLevelRaw}")`);

  const smtpUrl = get('SMTP_URL') ?? null;
  if (smtpUrl !== null && !/^smtps?:\/\/.+/.test(smtpUrl)) problems.push('SMTP_URL must be an smtp:// or smtps:// URL');
  const mailFrom = get('MAIL_FROM') ?? 'Cleverom Identity <no-reply@cleverom.fi>';

  // EU data residency (docs/operations.md): the database and the SMTP relay
  // must be inside the allow-list when one is set. A database file on this
  // host (no authority in the URL) is where the process runs.
  let dataRegionAllowlist: DataRegionAllowlist | null = null;
  const regionRaw = get('DATA_REGION_ALLOWLIST');
  if (regionRaw !== undefined) {
    const parsed = parseDataRegionAllowlist(regionRaw);
    problems.push(...parsed.problems);
    dataRegionAllowlist = parsed.entries;
    if (smtpUrl !== null) {
      const problem = dataRegionProblem(dataRegionAllowlist, 'SMTP_URL', smtpUrl);
      if (problem) problems.push(problem);
    }
    if (URL.canParse(databaseUrl) && new URL(databaseUrl).hostname !== '') {
      const problem = dataRegionProblem(dataRegionAllowlist, 'DATABASE_URL', databaseUrl);
      if (problem) problems.push(problem);
    }
  }

  const dangerouslyAllowLoopbackIdp = bool('DANGEROUSLY_ALLOW_LOOPBACK_IDP', false);
  if (dangerouslyAllowLoopbackIdp && production) {
    problems.push('DANGEROUSLY_ALLOW_LOOPBACK_IDP=true is refused when NODE_ENV=production');
  }

  const trustProxy = parseTrustProxy(get('TRUST_PROXY'), problems);

  const certFile = get('TLS_CERT_FILE');
  const keyFile = get('TLS_KEY_FILE');
  let tls: Config['tls'] = null;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    problems.push('TLS_CERT_FILE and TLS_KEY_FILE must be set together');
  } else if (certFile !== undefined && keyFile !== undefined) {
    for (const [name, file] of [['TLS_CERT_FILE', certFile], ['TLS_KEY_FILE', keyFile]] as const) {
      if (!existsSync(resolve(cwd, file))) problems.push(`${name} points to a missing file`);
    }
    tls = { certFile: resolve(cwd, certFile), keyFile: resolve(cwd, keyFile) };
  }

  const rateLimitPerIpPerMinute = int('RATE_LIMIT_PER_IP_PER_MINUTE', 60, 1, 1_000_000);
  const bodyLimitBytes = int('BODY_LIMIT_BYTES', 64 * 1024, 1024, 10 * 1024 * 1024);
  const requestTimeoutMs = int('REQUEST_TIMEOUT_MS', 30_000, 100, 600_000);
  const headersTimeoutMs = int('HEADERS_TIMEOUT_MS', Math.min(10_000, requestTimeoutMs), 100, 600_000);
  // Node refuses a headers timeout longer than the request timeout (it could never fire).
  if (headersTimeoutMs > requestTimeoutMs) problems.push(`HEADERS_TIMEOUT_MS (${headersTimeoutMs}) must not exceed REQUEST_TIMEOUT_MS (${requestTimeoutMs})`);
  const keepAliveTimeoutMs = int('KEEP_ALIVE_TIMEOUT_MS', 5_000, 100, 600_000);
  const httpTimeouts: HttpTimeouts = { requestTimeoutMs, headersTimeoutMs, keepAliveTimeoutMs, idleSocketTimeoutMs: 2 * requestTimeoutMs };
  const exportsPerHour = int('EXPORTS_PER_HOUR', 5, 1, 1_000);
  const idleMinutes = int('SESSION_IDLE_MINUTES', 60, 1, 24 * 60);
  const absoluteHours = int('SESSION_ABSOLUTE_HOURS', 24, 1, 24 * 30);

  const argon2: Argon2Params = {
    memoryCost: int('ARGON2_MEMORY_KIB', ARGON2_FLOOR.memoryCost, ARGON2_FLOOR.memoryCost, 4 * 1024 * 1024),
    timeCost: int('ARGON2_TIME_COST', ARGON2_FLOOR.timeCost, ARGON2_FLOOR.timeCost, 100),
    parallelism: int('ARGON2_PARALLELISM', ARGON2_FLOOR.parallelism, 1, 16),
  };

  const cores = availableParallelism();
  const maxConcurrent = int('ARGON2_MAX_CONCURRENT', defaultArgon2Concurrency(cores, get('UV_THREADPOOL_SIZE')), 1, 64);
  const argon2Admission: Argon2Admission = { maxConcurrent, maxQueued: int('ARGON2_MAX_QUEUE', 8 * cores, 0, 10_000) };

  const sessionCacheSize = int('SESSION_CACHE_SIZE', 10_000, 0, 1_000_000);

  const staffGrantMaxMinutes = int('STAFF_GRANT_MAX_MINUTES', 480, 5, 7 * 24 * 60);
  const plansFile = resolve(cwd, get('PLANS_FILE') ?? 'config/plans.json');
  if (!existsSync(plansFile)) problems.push(`PLANS_FILE ${plansFile} does not exist`);

  if (problems.length > 0) throw new ConfigError(problems);

  const secureCookies = publicUrl.protocol === 'https:';
  return Object.freeze({
    nodeEnv,
    port,
    host,
    publicUrl,
    publicOrigin: publicUrl.origin,
    secureCookies,
    databaseFile,
    dataDir,
    secretsKeys,
    auditKeys,
    auditCheckpointIntervalMinutes,
    auditCheckpointDir,
    logLevel,
    smtpUrl,
    mailFrom,
    dangerouslyAllowLoopbackIdp,
    trustProxy,
    tls,
    rateLimitPerIpPerMinute,
    bodyLimitBytes,
    httpTimeouts,
    exportsPerHour,
    session: { idleMinutes, absoluteHours },
    argon2,
    argon2Admission,
    sessionCacheSize,
    plansFile,
    staffGrantMaxMinutes,
    dataRegionAllowlist,
  });
}

/** `base64` (one key, id "k0") or `id:base64,id:base64` (the first encrypts). */
export function parseSecretsKey(raw: string): SecretKey[] | string {
  const parts = raw.split(',').map((p) => p.trim()).filter((p) => p !== '');
  const keys: SecretKey[] = [];
  for (const [index, part] of parts.entries()) {
    const colon = part.indexOf(':');
    const id = colon === -1 ? (parts.length === 1 ? 'k0' : '') : part.slice(0, colon);
    const b64 = colon === -1 ? part : part.slice(colon + 1);
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(id)) return `entry ${index + 1} needs a key id of letters, digits, _ or - (keyId:base64)`;
    const key = Buffer.from(b64, 'base64');
    if (key.length !== 32 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) return `entry ${index + 1} (${id}) must be 32 bytes in base64`;
    if (keys.some((k) => k.id === id)) return `key id ${id} appears twice`;
    keys.push({ id, key });
  }
  if (keys.length === 0) return 'is empty';
  return keys;
}

function parseTrustProxy(raw: string | undefined, problems: string[]): TrustProxy {
  if (raw === undefined || raw === 'false') return false;
  if (/^\d+$/.test(raw)) return Number(raw);
  const entries = raw.split(',').map((e) => e.trim());
  for (const entry of entries) {
    const [ip, bits] = entry.split('/');
    const family = isIP(ip ?? '');
    const maxBits = family === 4 ? 32 : 128;
    if (family === 0 || (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > maxBits))) {
      problems.push(`TRUST_PROXY must be false, a hop count, or a comma-separated list of IPs/CIDRs (bad entry "${entry}")`);
      return false;
    }
  }
  return entries;
}

/**
 * The process environment merged over `.env` (current directory) and
 * `config/local.env`; real environment variables win.
 */
export function readEnvironment(cwd: string = process.cwd()): Record<string, string | undefined> {
  const merged: Record<string, string | undefined> = {};
  for (const file of [resolve(cwd, 'config/local.env'), resolve(cwd, '.env')]) {
    if (existsSync(file)) Object.assign(merged, parseEnv(readFileSync(file, 'utf8')));
  }
  return { ...merged, ...process.env };
}

/**
 * How many argon2 hashes may be handed to libuv's thread pool at once.
 * Hashes never time-slice usefully (more at once than cores: each slower, no
 * more per second). With one pool thread per core (`bin/server.cjs` sets
 * that), twice the pool: each thread has the next hash queued behind its
 * current one and starts it without waiting for the event loop (issue 9:
 * ~5 % more logins per second, a lower p99). With a larger pool (libuv's
 * default is 4), the core count, so the threads left over serve file and
 * DNS work at once.
 */
export function defaultArgon2Concurrency(cores: number, poolSizeSetting: string | undefined): number {
  const pool = Number(poolSizeSetting ?? 4);
  if (!Number.isInteger(pool) || pool < 1) return cores;
  return pool <= cores ? 2 * pool : cores;
}
