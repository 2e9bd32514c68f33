/**
 * Lost writes: a crash (SIGKILL) in the middle of a burst of staff reads, or
 * of authz checks (which share COMMITs: group commit, issue 9), must never
 * leave an answered access without its audit event, nor break the chain.
 * The server runs as a real child process on 127.0.0.1; we kill it mid-burst,
 * restart it, and check every request that got a 200.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditKeyRing } from '../../src/audit/audit-keys.js';
import { SqliteAuditLog } from '../../src/audit/sqlite-audit.js';
import { parseSecretsKey } from '../../src/config/load-config.js';
import { ManualClock, systemClock } from '../../src/platform/clock.js';
import { PROJECT_ROOT, buildTestApp, signup, type SignedUp, type TestApp } from '../helpers/app.js';
import { approve, createStaff, requestAccess, type StaffUser } from '../helpers/staff.js';
import { makeEnterprise } from '../helpers/totp.js';

const dir = mkdtempSync(join(tmpdir(), 'cleverom-crash-'));
let databaseFile = join(dir, 'crash.db');
const secretsKey = randomBytes(32).toString('base64');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function startServer(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'error',
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      DATABASE_URL: `file:${databaseFile}`,
      SECRETS_KEY: secretsKey,
      RATE_LIMIT_PER_IP_PER_MINUTE: '1000000',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) return child;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('server did not become ready');
}

/**
 * An enterprise customer and a support engineer whose access to it a
 * security admin approved, set up with the real clock (the child process
 * runs on real time). The app is left open for the caller to close.
 */
async function approvedSupportAccess(): Promise<{ t: TestApp; customer: SignedUp; support: StaffUser }> {
  const t = await buildTestApp({ clock: new ManualClock(systemClock.now()), env: { DATABASE_URL: `file:${databaseFile}`, SECRETS_KEY: secretsKey } });
  const customer = await signup(t.app);
  await makeEnterprise(t, customer.orgId);
  const support = await createStaff(t, 'support');
  const admin = await createStaff(t, 'security_admin');
  const id = await requestAccess(t, support, { orgId: customer.orgId, durationMinutes: 60 });
  expect((await approve(t, admin, id)).statusCode).toBe(200);
  return { t, customer, support };
}

/**
 * Start the server on `port`, call `request` from `callers` concurrent
 * workers until `answers` requests were answered, SIGKILL the server
 * mid-burst and wait until it is gone. `request` resolves to the x-request-id
 * of an answer that counts, or null; a throw (connection refused or reset:
 * the server is gone) ends that worker. Returns the answered request ids.
 */
async function killMidBurst(port: number, burst: { callers: number; answers: number }, request: () => Promise<string | null>): Promise<string[]> {
  const server = await startServer(port);
  const answered: string[] = [];
  let killed = false;
  const worker = async (): Promise<void> => {
    // Bounded: at most 400 requests per worker, and the kill ends the loop.
    for (let i = 0; i < 400 && !killed; i += 1) {
      let requestId: string | null;
      try {
        requestId = await request();
      } catch {
        return;
      }
      if (requestId) answered.push(requestId);
    }
  };
  const workers = Array.from({ length: burst.callers }, worker);
  while (answered.length < burst.answers) await new Promise((r) => setTimeout(r, 5));
  server.kill('SIGKILL');
  killed = true;
  await Promise.all(workers);
  await new Promise((r) => server.once('exit', r).unref?.() ?? setTimeout(r, 100));
  return answered;
}

/** Restart on the same file (recovery from the WAL), run `whileUp`, then stop cleanly. */
async function restartAndStop(port: number, whileUp: () => Promise<void> = async () => {}): Promise<void> {
  const restarted = await startServer(port);
  await whileUp();
  restarted.kill('SIGTERM');
  await new Promise((r) => restarted.once('exit', r));
}

/** The audit keys the server derives from its SECRETS_KEY. */
function auditKeys(): AuditKeyRing {
  const ring = parseSecretsKey(secretsKey);
  if (typeof ring === 'string') throw new Error(ring);
  return AuditKeyRing.derive(ring);
}

/** The request ids of the `action` audit events in the database file, and whether the chain verifies. */
function auditedRequests(action: string): { requestIds: Set<string>; chainVerifies: boolean } {
  const db = new BetterSqlite3(databaseFile, { readonly: true });
  try {
    const requestIds = new Set(
      (db.prepare('SELECT data FROM audit_events WHERE action = ?').all(action) as { data: string }[]).map(
        (r) => (JSON.parse(r.data) as { requestId: string }).requestId,
      ),
    );
    return { requestIds, chainVerifies: new SqliteAuditLog(db, systemClock, auditKeys()).verify().ok };
  } finally {
    db.close();
  }
}

describe('crash safety of audited staff access', () => {
  it('every 200 before a SIGKILL has its audit event after restart, and the chain verifies', async () => {
    const { t, customer, support } = await approvedSupportAccess();
    await t.app.close();

    const port = await freePort();
    const url = `http://127.0.0.1:${port}/v1/staff/orgs/${customer.orgId}/members`;
    const headers = { authorization: `Bearer ${support.token}` };
    const answered = await killMidBurst(port, { callers: 8, answers: 150 }, async () => {
      const response = await fetch(url, { headers });
      const requestId = response.headers.get('x-request-id');
      await response.arrayBuffer();
      return response.status === 200 ? requestId : null;
    });
    expect(answered.length).toBeGreaterThanOrEqual(150);

    await restartAndStop(port, async () => {
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    });

    const audit = auditedRequests('staff.access.read');
    const missing = answered.filter((requestId) => !audit.requestIds.has(requestId));
    expect(missing).toEqual([]);
    expect(audit.chainVerifies).toBe(true);
  }, 90_000);

  it('every authz check answered before a SIGKILL has its audit event (group commit acknowledges after COMMIT)', async () => {
    databaseFile = join(dir, 'crash-authz.db');
    const { t, customer, support } = await approvedSupportAccess();
    const { token } = await t.services.serviceTokens.create('crash-test', ['authz:check'], { type: 'system', id: null });
    await t.app.close();

    const port = await freePort();
    const body = JSON.stringify({ staffId: support.id, orgId: customer.orgId, action: 'read', resource: 'invoices/1' });
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    // 16 concurrent callers, so COMMITs carry several checks each.
    const answered = await killMidBurst(port, { callers: 16, answers: 300 }, async () => {
      const response = await fetch(`http://127.0.0.1:${port}/v1/authz/check`, { method: 'POST', headers, body });
      const requestId = response.headers.get('x-request-id');
      const answer = (await response.json()) as { allow?: boolean };
      return response.status === 200 && answer.allow === true ? requestId : null;
    });
    expect(answered.length).toBeGreaterThanOrEqual(300);

    await restartAndStop(port);

    const audit = auditedRequests('staff.authz.allowed');
    expect(answered.filter((requestId) => !audit.requestIds.has(requestId))).toEqual([]);
    expect(audit.chainVerifies).toBe(true);
  }, 90_000);
});
