import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import canonicalize from 'canonicalize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config/load-config.js';
import { GOOD_PASSWORD, PROJECT_ROOT } from './helpers/app.js';

/**
 * The real CLI as an operator runs it: `node --import tsx src/cli.ts <verb>`,
 * one child process per verb, all on one database file. The tests run in
 * order and build on each other (each child process costs about a second).
 */

let dir: string;
let databaseFile: string;
let env: Record<string, string>;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cleverom-cli-'));
  databaseFile = join(dir, 'cli.db');
  env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? dir,
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: `file:${databaseFile}`,
    SECRETS_KEY: randomBytes(32).toString('base64'),
  };
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed: every verb prints exactly one JSON line. */
  json: Record<string, unknown>;
}

function cli(...args: string[]): Promise<CliRun> {
  return cliOn(env, ...args);
}

/** The CLI with other environment variables (e.g. a copy of the database). */
function cliOn(runEnv: Record<string, string>, ...args: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: PROJECT_ROOT, env: runEnv, timeout: 20_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        reject(error);
        return;
      }
      const lines = stdout.trim().split('\n');
      let json: Record<string, unknown>;
      try {
        expect(lines).toHaveLength(1);
        json = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
      } catch (parseError) {
        reject(new Error(`stdout is not one JSON line: ${stdout} / stderr: ${stderr} (${String(parseError)})`));
        return;
      }
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr, json });
    });
  });
}

/** A short-lived connection to the file the CLI writes, as an operator with sqlite3 would open it. */
function withDb<T>(fn: (db: BetterSqlite3.Database) => T, file: string = databaseFile): T {
  const db = new BetterSqlite3(file);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** A consistent copy of the CLI's database (to tamper with), and the environment to run the CLI on it. */
function copyOfDatabase(name: string): { file: string; env: Record<string, string> } {
  const file = join(dir, name);
  withDb((db) => db.exec(`VACUUM INTO '${file}'`));
  return { file, env: { ...env, DATABASE_URL: `file:${file}` } };
}

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

const OWNER_EMAIL = 'Operator.Owner@Example.com';
let checkpointFile = '';
let orgId = '';
let ownerId = '';
let billingToken = '';

describe('cleverom CLI', () => {
  it('answers an unknown verb with exit 2 and the usage, without touching the database', async () => {
    const run = await cli('org:delete-everything');
    expect(run.code).toBe(2);
    expect(run.json).toMatchObject({ ok: false, error: 'unknown_command' });
    expect(run.json.usage).toEqual(expect.arrayContaining([expect.stringContaining('org:create'), expect.stringContaining('audit:verify')]));
    expect(existsSync(databaseFile)).toBe(false);
  });

  it('migrate creates the schema with the append-only audit triggers ({"ok":true})', async () => {
    const run = await cli('migrate');
    expect(run.code).toBe(0);
    expect(run.json).toMatchObject({ ok: true });
    const names = withDb((db) => (db.prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')").all() as { name: string }[]).map((r) => r.name));
    expect(names).toEqual(expect.arrayContaining(['orgs', 'users', 'sessions', 'invitations', 'audit_events', 'audit_events_no_update', 'audit_events_no_delete']));
  });

  it('org:create makes an enterprise org with an owner who can log in through the API', async () => {
    const run = await cli('org:create', '--name', 'Operator Oy', '--plan', 'enterprise', '--owner-email', OWNER_EMAIL, '--owner-password', GOOD_PASSWORD);
    expect(run.code).toBe(0);
    expect(Object.keys(run.json).sort()).toEqual(['id', 'ownerId']);
    orgId = String(run.json.id);
    ownerId = String(run.json.ownerId);
    expect(orgId).not.toBe('');
    expect(ownerId).not.toBe(orgId);

    const stored = withDb((db) => ({
      org: db.prepare('SELECT name, plan FROM orgs WHERE id = ?').get(orgId),
      owner: db.prepare('SELECT email, role, org_id, password_hash FROM users WHERE id = ?').get(ownerId) as { email: string; role: string; org_id: string; password_hash: string },
    }));
    expect(stored.org).toEqual({ name: 'Operator Oy', plan: 'enterprise' });
    expect(stored.owner).toMatchObject({ email: OWNER_EMAIL.toLowerCase(), role: 'owner', org_id: orgId });
    expect(stored.owner.password_hash).toMatch(/^\$argon2id\$/);
    expect(run.stdout + run.stderr).not.toContain(GOOD_PASSWORD);

    // The same database through the real app: the owner logs in and sees the org.
    const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: env.DATABASE_URL, SECRETS_KEY: env.SECRETS_KEY }, PROJECT_ROOT);
    const { app } = await buildApp(config);
    try {
      const login = await app.inject({ method: 'POST', url: '/v1/login', payload: { email: OWNER_EMAIL, password: GOOD_PASSWORD } });
      expect(login.statusCode).toBe(200);
      expect(login.json().user).toMatchObject({ id: ownerId, orgId, role: 'owner' });
      const token = login.cookies.find((c) => c.name === 'cleverom_session')?.value ?? '';
      const org = await app.inject({ method: 'GET', url: `/v1/orgs/${orgId}`, headers: { authorization: `Bearer ${token}` } });
      expect(org.statusCode).toBe(200);
      expect(org.json()).toMatchObject({ id: orgId, name: 'Operator Oy', plan: 'enterprise', features: expect.arrayContaining(['mfa_totp', 'sso']) });
    } finally {
      await app.close();
    }
  });

  it('org:create refuses a weak owner password with a usage error and creates nothing', async () => {
    const run = await cli('org:create', '--name', 'Weak Oy', '--owner-email', 'weak@example.com', '--owner-password', 'short');
    expect(run.code).not.toBe(0);
    expect(run.json).toMatchObject({ ok: false, error: 'usage' });
    expect(String(run.json.message)).toContain('--owner-password');
    expect(withDb((db) => db.prepare("SELECT COUNT(*) AS n FROM orgs WHERE name = 'Weak Oy'").get())).toEqual({ n: 0 });
  });

  it('org:set-plan changes the plan and prints the new features; the change is audited as the system', async () => {
    const run = await cli('org:set-plan', '--org', orgId, '--plan', 'pro');
    expect(run.code).toBe(0);
    expect(run.json).toEqual({ id: orgId, plan: 'pro', features: ['audit_export'] });
    const stored = withDb((db) => ({
      plan: db.prepare('SELECT plan FROM orgs WHERE id = ?').get(orgId),
      event: db.prepare("SELECT actor_type, org_id, data FROM audit_events WHERE action = 'org.plan_changed'").all(),
    }));
    expect(stored.plan).toEqual({ plan: 'pro' });
    expect(stored.event).toEqual([{ actor_type: 'system', org_id: orgId, data: JSON.stringify({ from: 'enterprise', to: 'pro' }) }]);
  });

  it('org:set-plan refuses an unknown plan with a non-zero exit and a JSON error', async () => {
    const run = await cli('org:set-plan', '--org', orgId, '--plan', 'platinum');
    // A bad flag value is a usage error, exactly as for org:create.
    expect(run.code).toBe(2);
    expect(run.json).toMatchObject({ ok: false, error: 'usage' });
    expect(withDb((db) => db.prepare('SELECT plan FROM orgs WHERE id = ?').get(orgId))).toEqual({ plan: 'pro' });
  });

  it('service-token:create prints {id, token} once; only the hash is stored; the token works on the internal API', async () => {
    const run = await cli('service-token:create', '--name', 'billing', '--scopes', 'plans:write');
    expect(run.code).toBe(0);
    expect(Object.keys(run.json).sort()).toEqual(['id', 'token']);
    billingToken = String(run.json.token);
    expect(billingToken).toMatch(/^cst_[A-Za-z0-9_-]{40,}$/);
    const stored = withDb((db) => db.prepare('SELECT * FROM service_tokens WHERE id = ?').get(String(run.json.id)) as Record<string, unknown>);
    expect(stored).toMatchObject({ name: 'billing', scopes: JSON.stringify(['plans:write']), revoked_at: null });
    expect(JSON.stringify(stored)).not.toContain(billingToken.slice(4));

    const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: env.DATABASE_URL, SECRETS_KEY: env.SECRETS_KEY }, PROJECT_ROOT);
    const { app } = await buildApp(config);
    try {
      const response = await app.inject({
        method: 'PUT',
        url: `/v1/internal/orgs/${orgId}/plan`,
        headers: { authorization: `Bearer ${billingToken}` },
        payload: { plan: 'enterprise' },
      });
      expect(response.statusCode).toBe(200);
      expect(response.json().plan).toBe('enterprise');
    } finally {
      await app.close();
    }
  });

  it('service-token:create refuses unknown scopes with a non-zero exit and a JSON error, storing nothing', async () => {
    const before = withDb((db) => db.prepare('SELECT COUNT(*) AS n FROM service_tokens').get());
    const run = await cli('service-token:create', '--name', 'evil', '--scopes', 'plans:write,root:everything');
    expect(run.code).not.toBe(0);
    expect(run.json).toMatchObject({ ok: false, error: 'validation_failed' });
    expect(run.stdout).not.toMatch(/cst_/);
    expect(withDb((db) => db.prepare('SELECT COUNT(*) AS n FROM service_tokens').get())).toEqual(before);
  });

  /** Attack: an NDA "on record" that is dated in the future (issue 23 item 6): refused, nothing stored. */
  it('staff:create refuses an NDA dated after today with a non-zero exit and a JSON error, creating nobody', async () => {
    const tomorrow = new Date(Date.now() + 36 * 3600 * 1000).toISOString().slice(0, 10);
    for (const date of [tomorrow, '2099-01-01', '2026-02-31']) {
      const run = await cli('staff:create', '--email', 'future.nda@cleverom.fi', '--name', 'Future Nda', '--role', 'support', '--nda-signed', date, '--password', GOOD_PASSWORD);
      expect(run.code, date).not.toBe(0);
      expect(run.json).toMatchObject({ ok: false, error: 'validation_failed' });
    }
    expect(withDb((db) => db.prepare("SELECT COUNT(*) AS n FROM users WHERE email = 'future.nda@cleverom.fi'").get())).toEqual({ n: 0 });
  });

  it('audit:verify exits 0 with {"ok":true,"events":N} over everything the CLI and the API recorded', async () => {
    const count = withDb((db) => (db.prepare('SELECT COUNT(*) AS n FROM audit_events').get() as { n: number }).n);
    // org.created, user.signup, auth.login.succeeded, org.plan_changed ×2, service_token.created
    expect(count).toBe(6);
    const run = await cli('audit:verify');
    expect(run.code).toBe(0);
    expect(run.json).toEqual({ ok: true, events: count });
  });

  it('audit:checkpoint prints a signed checkpoint of the head, also written to <data>/checkpoints; audit:verify --checkpoint accepts it', async () => {
    const run = await cli('audit:checkpoint');
    expect(run.code).toBe(0);
    const head = withDb((db) => db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string });
    expect(run.json).toEqual({ version: 1, seq: head.seq, hash: head.hash, at: expect.any(String), keyId: 'k0', signature: expect.stringMatching(/^[A-Za-z0-9_-]{86}$/) });
    const files = readdirSync(join(dir, 'checkpoints'));
    expect(files).toHaveLength(1);
    expect(JSON.parse(readFileSync(join(dir, 'checkpoints', files[0] ?? ''), 'utf8'))).toEqual(run.json);
    checkpointFile = join(dir, 'head-checkpoint.json');
    writeFileSync(checkpointFile, run.stdout);
    const verified = await cli('audit:verify', '--checkpoint', checkpointFile);
    expect(verified.code).toBe(0);
    expect(verified.json).toEqual({ ok: true, events: head.seq, checkpointSeq: head.seq });
  });

  /**
   * Attack (issue 23, item 11): with write access to the database file, an
   * event appended with a correctly recomputed SHA-256 hash, and the last
   * three events cut off. Before the keyed chain, `audit:verify` said ok to both.
   */
  it('audit:verify exits 1 on an appended event whose SHA-256 is right but whose MAC is not', async () => {
    const copy = copyOfDatabase('forged.db');
    const forged = withDb((db) => {
      const head = db.prepare('SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1').get() as Record<string, string | number | null>;
      const event = { seq: Number(head.seq) + 1, id: '01900000-0000-7000-8000-00000000beef', at: String(head.at), action: 'org.plan_changed', actorType: 'system', actorId: null, orgId: orgId, subjectId: null, data: '{"from":"free","to":"enterprise"}', piiCommitment: null };
      const hash = sha256(sha256(canonicalize(event) ?? '') + String(head.hash));
      db.prepare(
        `INSERT INTO audit_events (seq, id, at, action, actor_type, actor_id, org_id, subject_id, data, pii_commitment, prev_hash, hash, mac, key_id)
         VALUES (?, ?, ?, ?, ?, NULL, ?, NULL, ?, NULL, ?, ?, ?, 'k0')`,
      ).run(event.seq, event.id, event.at, event.action, event.actorType, event.orgId, event.data, head.hash, hash, sha256(hash));
      return event.seq;
    }, copy.file);
    const run = await cliOn(copy.env, 'audit:verify');
    expect(run.code).toBe(1);
    expect(run.json).toMatchObject({ ok: false, brokenSeq: forged, events: forged - 1, reason: expect.stringContaining('MAC') });
  });

  it('audit:verify cannot see the last three events cut off, but --checkpoint names the truncation (exit 1)', async () => {
    const copy = copyOfDatabase('truncated.db');
    const head = withDb((db) => {
      const last = (db.prepare('SELECT MAX(seq) AS n FROM audit_events').get() as { n: number }).n;
      db.exec('DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;');
      db.prepare('DELETE FROM audit_pii WHERE seq > ?').run(last - 3);
      db.prepare('DELETE FROM audit_events WHERE seq > ?').run(last - 3);
      return last;
    }, copy.file);
    const plain = await cliOn(copy.env, 'audit:verify');
    expect(plain.code).toBe(0);
    expect(plain.json).toEqual({ ok: true, events: head - 3 });
    const run = await cliOn(copy.env, 'audit:verify', '--checkpoint', checkpointFile);
    expect(run.code).toBe(1);
    expect(run.json).toMatchObject({ ok: false, brokenSeq: head - 2, events: head - 3, checkpointSeq: head, reason: expect.stringContaining('truncated') });
  });

  it('audit:verify --checkpoint refuses an edited checkpoint (exit 1) and a missing file (exit 2)', async () => {
    const checkpoint = JSON.parse(readFileSync(checkpointFile, 'utf8')) as { seq: number };
    const edited = join(dir, 'edited-checkpoint.json');
    writeFileSync(edited, JSON.stringify({ ...checkpoint, seq: checkpoint.seq - 1 }));
    const run = await cli('audit:verify', '--checkpoint', edited);
    expect(run.code).toBe(1);
    expect(run.json).toMatchObject({ ok: false, error: 'checkpoint_invalid', reason: expect.stringContaining('signature') });
    const missing = await cli('audit:verify', '--checkpoint', join(dir, 'nowhere.json'));
    expect(missing.code).toBe(2);
    expect(missing.json).toMatchObject({ ok: false, error: 'usage' });
  });

  it('audit:verify exits 1 naming the first broken seq after someone edits a row behind the triggers', async () => {
    const target = withDb((db) => {
      const row = db.prepare("SELECT seq FROM audit_events WHERE action = 'org.plan_changed' ORDER BY seq LIMIT 1").get() as { seq: number };
      // An attacker with the file drops the append-only triggers, then rewrites history.
      db.exec('DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;');
      db.prepare('UPDATE audit_events SET data = ? WHERE seq = ?').run(JSON.stringify({ from: 'enterprise', to: 'free' }), row.seq);
      return row.seq;
    });
    expect(target).toBeGreaterThan(1);
    const run = await cli('audit:verify');
    expect(run.code).toBe(1);
    expect(run.json).toMatchObject({ ok: false, brokenSeq: target, events: target - 1 });
    expect(typeof run.json.reason).toBe('string');
  });
});
