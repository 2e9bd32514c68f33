import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, defaultArgon2Concurrency, loadConfig, parseSecretsKey } from '../../src/config/load-config.js';
import { GOOD_PASSWORD, PROJECT_ROOT, buildTestApp, uniqueEmail, type TestApp } from '../helpers/app.js';

/**
 * Configuration (API.md "Configuration"): validated at start, every bad value
 * reported at once with a clear message; production refuses unsafe settings.
 */

const key = () => randomBytes(32).toString('base64');

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env, PROJECT_ROOT);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

const production = (extra: Record<string, string> = {}) => ({ NODE_ENV: 'production', PUBLIC_URL: 'https://id.cleverom.fi', SECRETS_KEY: key(), ...extra });

describe('loadConfig defaults', () => {
  it('uses the documented defaults when nothing is set', () => {
    const config = loadConfig({}, PROJECT_ROOT);
    expect(config.port).toBe(3000);
    expect(config.host).toBe('127.0.0.1');
    expect(config.databaseFile).toBe(join(PROJECT_ROOT, 'data', 'cleverom.db'));
    expect(config.dataDir).toBe(join(PROJECT_ROOT, 'data'));
    expect(config.nodeEnv).toBe('development');
    expect(config.publicOrigin).toBe('http://127.0.0.1:3000');
    expect(config.secureCookies).toBe(false);
    expect(config.trustProxy).toBe(false);
    expect(config.dangerouslyAllowLoopbackIdp).toBe(false);
    expect(config.rateLimitPerIpPerMinute).toBe(60);
    expect(config.bodyLimitBytes).toBe(64 * 1024);
    expect(config.session).toEqual({ idleMinutes: 60, absoluteHours: 24 });
    // SECURITY.md "timeouts": bounded by default (docs/operations.md).
    expect(config.httpTimeouts).toEqual({ requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000, idleSocketTimeoutMs: 60_000 });
    expect(config.exportsPerHour).toBe(5);
    expect(config.smtpUrl).toBeNull();
    expect(config.tls).toBeNull();
    expect(config.logLevel).toBe('info');
    // Outside production no key is required (the server generates a development key).
    expect(config.secretsKeys).toBeNull();
    // argon2id at least at the OWASP floor.
    expect(config.argon2.memoryCost).toBeGreaterThanOrEqual(19456);
    expect(config.argon2.timeCost).toBeGreaterThanOrEqual(2);
    expect(config.argon2.parallelism).toBeGreaterThanOrEqual(1);
  });

  it('is frozen', () => {
    const config = loadConfig({}, PROJECT_ROOT);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads the documented variables', () => {
    const config = loadConfig(
      {
        PORT: '8443',
        HOST: '0.0.0.0',
        DATABASE_URL: 'file:./var/other.db',
        LOG_LEVEL: 'warn',
        TRUST_PROXY: '10.0.0.0/8, 192.168.1.1',
        RATE_LIMIT_PER_IP_PER_MINUTE: '5',
        SMTP_URL: 'smtp://mail.internal:25',
        DANGEROUSLY_ALLOW_LOOPBACK_IDP: 'true',
      },
      PROJECT_ROOT,
    );
    expect(config.port).toBe(8443);
    expect(config.host).toBe('0.0.0.0');
    expect(config.databaseFile).toBe(join(PROJECT_ROOT, 'var', 'other.db'));
    expect(config.logLevel).toBe('warn');
    expect(config.trustProxy).toEqual(['10.0.0.0/8', '192.168.1.1']);
    expect(config.rateLimitPerIpPerMinute).toBe(5);
    expect(config.smtpUrl).toBe('smtp://mail.internal:25');
    expect(config.dangerouslyAllowLoopbackIdp).toBe(true);
  });

  it('accepts a hop count for TRUST_PROXY', () => {
    expect(loadConfig({ TRUST_PROXY: '2' }, PROJECT_ROOT).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: 'false' }, PROJECT_ROOT).trustProxy).toBe(false);
  });

  it('an https PUBLIC_URL turns on secure cookies and sets the public origin', () => {
    const config = loadConfig({ PUBLIC_URL: 'https://id.cleverom.fi/' }, PROJECT_ROOT);
    expect(config.secureCookies).toBe(true);
    expect(config.publicOrigin).toBe('https://id.cleverom.fi');
  });

  it('a valid production configuration loads', () => {
    const config = loadConfig(production(), PROJECT_ROOT);
    expect(config.nodeEnv).toBe('production');
    expect(config.secretsKeys).toHaveLength(1);
  });
});

describe('loadConfig problems', () => {
  it('reports every bad value at once, each naming its variable', () => {
    let caught: unknown;
    try {
      loadConfig({ PORT: 'abc', LOG_LEVEL: 'loud', TRUST_PROXY: 'nonsense', RATE_LIMIT_PER_IP_PER_MINUTE: '0' }, PROJECT_ROOT);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const error = caught as ConfigError;
    expect(error.problems).toHaveLength(4);
    for (const name of ['PORT', 'LOG_LEVEL', 'TRUST_PROXY', 'RATE_LIMIT_PER_IP_PER_MINUTE']) {
      expect(error.problems.some((p) => p.startsWith(name))).toBe(true);
    }
    expect(error.problems.find((p) => p.startsWith('PORT'))).toContain('"abc"');
    expect(error.problems.find((p) => p.startsWith('LOG_LEVEL'))).toContain('"loud"');
    expect(error.problems.find((p) => p.startsWith('TRUST_PROXY'))).toContain('nonsense');
    // The message printed at start lists them all.
    for (const problem of error.problems) expect(error.message).toContain(problem);
  });

  it('reads the HTTP timeouts, and refuses a headers timeout longer than the request timeout (with the other problems)', () => {
    const config = loadConfig({ REQUEST_TIMEOUT_MS: '2000', HEADERS_TIMEOUT_MS: '1500', KEEP_ALIVE_TIMEOUT_MS: '700' }, PROJECT_ROOT);
    expect(config.httpTimeouts).toEqual({ requestTimeoutMs: 2000, headersTimeoutMs: 1500, keepAliveTimeoutMs: 700, idleSocketTimeoutMs: 4000 });
    // Without HEADERS_TIMEOUT_MS, a short request timeout bounds the headers too.
    expect(loadConfig({ REQUEST_TIMEOUT_MS: '500' }, PROJECT_ROOT).httpTimeouts.headersTimeoutMs).toBe(500);
    const problems = problemsOf({ REQUEST_TIMEOUT_MS: '5000', HEADERS_TIMEOUT_MS: '6000', KEEP_ALIVE_TIMEOUT_MS: '0', PORT: 'x' });
    expect(problems).toHaveLength(3);
    expect(problems.find((p) => p.startsWith('HEADERS_TIMEOUT_MS'))).toContain('must not exceed REQUEST_TIMEOUT_MS');
    expect(problems.some((p) => p.startsWith('KEEP_ALIVE_TIMEOUT_MS'))).toBe(true);
  });

  it.each([
    ['PORT out of range', { PORT: '70000' }, 'PORT'],
    ['PORT negative', { PORT: '-1' }, 'PORT'],
    ['a non-http PUBLIC_URL', { PUBLIC_URL: 'ftp://id.example.com' }, 'PUBLIC_URL'],
    ['a PUBLIC_URL that is not a URL', { PUBLIC_URL: 'not a url' }, 'PUBLIC_URL'],
    ['a non-file DATABASE_URL', { DATABASE_URL: 'postgres://db/cleverom' }, 'DATABASE_URL'],
    ['an SMTP_URL that is not smtp', { SMTP_URL: 'http://mail' }, 'SMTP_URL'],
    ['a boolean that is not', { DANGEROUSLY_ALLOW_LOOPBACK_IDP: 'yes please' }, 'DANGEROUSLY_ALLOW_LOOPBACK_IDP'],
    ['a CIDR with too many bits', { TRUST_PROXY: '10.0.0.0/33' }, 'TRUST_PROXY'],
    ['an unknown NODE_ENV', { NODE_ENV: 'staging' }, 'NODE_ENV'],
    ['argon2 memory below the OWASP floor', { ARGON2_MEMORY_KIB: '1024' }, 'ARGON2_MEMORY_KIB'],
    ['argon2 time cost below the floor', { ARGON2_TIME_COST: '1' }, 'ARGON2_TIME_COST'],
    ['no exports at all', { EXPORTS_PER_HOUR: '0' }, 'EXPORTS_PER_HOUR'],
  ])('refuses %s', (_label, env, name) => {
    const problems = problemsOf(env);
    expect(problems.some((p) => p.includes(name))).toBe(true);
  });

  it('production without SECRETS_KEY and PUBLIC_URL names both', () => {
    const problems = problemsOf({ NODE_ENV: 'production' });
    expect(problems.some((p) => p.includes('SECRETS_KEY'))).toBe(true);
    expect(problems.some((p) => p.includes('PUBLIC_URL'))).toBe(true);
  });

  it('production refuses a plain-http PUBLIC_URL', () => {
    const problems = problemsOf(production({ PUBLIC_URL: 'http://id.cleverom.fi' }));
    expect(problems).toEqual([expect.stringContaining('PUBLIC_URL')]);
  });

  it('production refuses DANGEROUSLY_ALLOW_LOOPBACK_IDP=true', () => {
    const problems = problemsOf(production({ DANGEROUSLY_ALLOW_LOOPBACK_IDP: 'true' }));
    expect(problems).toEqual([expect.stringContaining('DANGEROUSLY_ALLOW_LOOPBACK_IDP')]);
    expect(loadConfig(production({ DANGEROUSLY_ALLOW_LOOPBACK_IDP: 'false' }), PROJECT_ROOT).dangerouslyAllowLoopbackIdp).toBe(false);
  });

  it.each([
    ['not base64', '!!!not-base64!!!'],
    ['16 bytes', randomBytes(16).toString('base64')],
    ['33 bytes', randomBytes(33).toString('base64')],
    ['a ring with one short key', `a:${key()},b:${randomBytes(8).toString('base64')}`],
    ['a ring with a duplicate id', (() => `a:${key()},a:${key()}`)()],
    ['a ring entry without an id', `a:${key()},${key()}`],
  ])('refuses a SECRETS_KEY that is %s', (_label, value) => {
    const problems = problemsOf({ SECRETS_KEY: value });
    expect(problems).toEqual([expect.stringContaining('SECRETS_KEY')]);
    // The key material itself is never echoed back in the message.
    expect(problems.join(' ')).not.toContain(value.split(',')[0]?.split(':').at(-1));
  });

  it('TLS_CERT_FILE without TLS_KEY_FILE (and the reverse) is a problem', () => {
    expect(problemsOf({ TLS_CERT_FILE: 'package.json' }).some((p) => p.includes('TLS_CERT_FILE') && p.includes('TLS_KEY_FILE'))).toBe(true);
    expect(problemsOf({ TLS_KEY_FILE: 'package.json' }).some((p) => p.includes('TLS_KEY_FILE'))).toBe(true);
  });

  it('TLS files that do not exist are a problem', () => {
    const problems = problemsOf({ TLS_CERT_FILE: 'nope/cert.pem', TLS_KEY_FILE: 'nope/key.pem' });
    expect(problems.some((p) => p.includes('TLS_CERT_FILE'))).toBe(true);
    expect(problems.some((p) => p.includes('TLS_KEY_FILE'))).toBe(true);
  });
});

describe('SECRETS_KEY ring', () => {
  it('a single base64 key gets the id k0', () => {
    const config = loadConfig({ SECRETS_KEY: key() }, PROJECT_ROOT);
    expect(config.secretsKeys?.map((k) => k.id)).toEqual(['k0']);
    expect(config.secretsKeys?.[0]?.key).toHaveLength(32);
  });

  it('parses keyId:base64,keyId2:base64 with the first as the primary', () => {
    const first = randomBytes(32);
    const second = randomBytes(32);
    const config = loadConfig({ SECRETS_KEY: `2026a:${first.toString('base64')}, 2025b:${second.toString('base64')}` }, PROJECT_ROOT);
    expect(config.secretsKeys?.map((k) => k.id)).toEqual(['2026a', '2025b']);
    expect(config.secretsKeys?.[0]?.key.equals(first)).toBe(true);
    expect(config.secretsKeys?.[1]?.key.equals(second)).toBe(true);
  });

  it('parseSecretsKey reports an empty ring', () => {
    expect(typeof parseSecretsKey(' , ')).toBe('string');
  });
});

describe('audit key and checkpoints', () => {
  it('defaults: keys derived from SECRETS_KEY, a checkpoint every 10 minutes into <data>/checkpoints', () => {
    const config = loadConfig({ SECRETS_KEY: key() }, PROJECT_ROOT);
    expect(config.auditKeys).toBeNull();
    expect(config.auditCheckpointIntervalMinutes).toBe(10);
    expect(config.auditCheckpointDir).toBe(join(PROJECT_ROOT, 'data', 'checkpoints'));
  });

  it('reads AUDIT_KEY as a ring like SECRETS_KEY, the interval (0 = off) and the folder', () => {
    const config = loadConfig({ AUDIT_KEY: `a2:${key()},a1:${key()}`, AUDIT_CHECKPOINT_INTERVAL_MINUTES: '0', AUDIT_CHECKPOINT_DIR: '/var/lib/cleverom/checkpoints' }, PROJECT_ROOT);
    expect(config.auditKeys?.map((k) => k.id)).toEqual(['a2', 'a1']);
    expect(config.auditCheckpointIntervalMinutes).toBe(0);
    expect(config.auditCheckpointDir).toBe('/var/lib/cleverom/checkpoints');
  });

  it('refuses a malformed AUDIT_KEY and an interval out of range, naming each', () => {
    const problems = problemsOf({ AUDIT_KEY: 'a1:tooshort', AUDIT_CHECKPOINT_INTERVAL_MINUTES: '1441' });
    expect(problems).toEqual([expect.stringContaining('AUDIT_KEY'), expect.stringContaining('AUDIT_CHECKPOINT_INTERVAL_MINUTES')]);
  });
});

describe('https PUBLIC_URL end to end', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('sets the __Host- session cookie with Secure and sends Strict-Transport-Security', async () => {
    t = await buildTestApp({ env: { PUBLIC_URL: 'https://id.cleverom.test' } });
    const signup = await t.app.inject({
      method: 'POST',
      url: '/v1/signup',
      headers: { origin: 'https://id.cleverom.test' },
      payload: { orgName: 'Secure Oy', name: 'Sam Secure', email: uniqueEmail('tls'), password: GOOD_PASSWORD, ageConfirmed: true },
    });
    expect(signup.statusCode).toBe(201);
    const cookie = signup.cookies.find((c) => c.name === '__Host-cleverom_session');
    expect(cookie).toMatchObject({ secure: true, httpOnly: true, sameSite: 'Lax', path: '/' });
    expect(cookie?.domain).toBeUndefined();
    expect(signup.cookies.find((c) => c.name === 'cleverom_session')).toBeUndefined();
    const hsts = String(signup.headers['strict-transport-security']);
    expect(hsts).toMatch(/max-age=\d+/);
    expect(Number(/max-age=(\d+)/.exec(hsts)?.[1])).toBeGreaterThanOrEqual(15_552_000);

    const token = cookie?.value ?? '';
    // The __Host- cookie is the session; the plain name is not read over https.
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', cookies: { '__Host-cleverom_session': token } })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', cookies: { cleverom_session: token } })).statusCode).toBe(401);

    // CSRF compares against the https origin.
    const wrongOrigin = await t.app.inject({ method: 'POST', url: '/v1/logout', cookies: { '__Host-cleverom_session': token }, headers: { origin: 'http://id.cleverom.test' } });
    expect(wrongOrigin.statusCode).toBe(403);
    const logout = await t.app.inject({ method: 'POST', url: '/v1/logout', cookies: { '__Host-cleverom_session': token }, headers: { origin: 'https://id.cleverom.test' } });
    expect(logout.statusCode).toBe(204);
    const cleared = logout.cookies.find((c) => c.name === '__Host-cleverom_session');
    expect(cleared).toMatchObject({ value: '', secure: true, path: '/' });
  });

  const hasOpenssl = (() => {
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(!hasOpenssl)('serves HTTPS directly with TLS_CERT_FILE + TLS_KEY_FILE', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cleverom-tls-'));
    try {
      const certFile = join(dir, 'cert.pem');
      const keyFile = join(dir, 'key.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
      t = await buildTestApp({ env: { PUBLIC_URL: 'https://localhost:3443', TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile } });
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = t.app.server.address() as AddressInfo;
      const ca = readFileSync(certFile);
      const { status, body, hsts } = await new Promise<{ status: number; body: string; hsts: string | undefined }>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port, path: '/healthz', ca, servername: 'localhost' }, (res) => {
          let data = '';
          res.on('data', (chunk: Buffer) => (data += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data, hsts: res.headers['strict-transport-security'] }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(200);
      expect(JSON.parse(body)).toEqual({ status: 'ok' });
      expect(hsts).toMatch(/max-age=/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('argon2 admission defaults (issue 9)', () => {
  it('queues one hash behind each pool thread when the pool has one thread per core', () => {
    expect(defaultArgon2Concurrency(2, '2')).toBe(4);
    expect(defaultArgon2Concurrency(8, '4')).toBe(8);
  });

  it('runs only as many hashes as cores when the pool is larger (its other threads stay free for file and DNS work)', () => {
    expect(defaultArgon2Concurrency(2, undefined)).toBe(2); // libuv's default pool of 4
    expect(defaultArgon2Concurrency(2, '16')).toBe(2);
    expect(defaultArgon2Concurrency(2, 'lots')).toBe(2);
  });

  it('reads UV_THREADPOOL_SIZE, bounds the queue by the cores, and lets ARGON2_MAX_CONCURRENT override', () => {
    const cores = availableParallelism();
    const pooled = loadConfig({ ...production(), UV_THREADPOOL_SIZE: String(cores) }, PROJECT_ROOT).argon2Admission;
    expect(pooled).toEqual({ maxConcurrent: 2 * cores, maxQueued: 8 * cores });
    const chosen = loadConfig({ ...production(), UV_THREADPOOL_SIZE: String(cores), ARGON2_MAX_CONCURRENT: '3' }, PROJECT_ROOT).argon2Admission;
    expect(chosen.maxConcurrent).toBe(3);
  });
});
