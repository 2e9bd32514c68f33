/**
 * Attack (issue 23, item 11): someone with write access to the database file
 * — the threat `audit:verify` exists for — drops the append-only triggers,
 * then forges, rewrites or truncates audit history, recomputing every
 * SHA-256 so the plain hash chain still links. The chain now carries a MAC
 * under a key that is not in the database, and its head is signed into
 * checkpoints kept outside it; these tests show what each detects and what
 * it cannot (docs/threat-model.md, "Audit chain").
 */
import { createHash, createPublicKey, randomBytes, verify as verifySignature } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import canonicalize from 'canonicalize';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { afterEach, describe, expect, it } from 'vitest';
import type { Checkpoint } from '../../src/audit/checkpoint.js';
import { MIGRATIONS_FOLDER } from '../../src/platform/db/sqlite.js';
import { asUser, buildTestApp, login, signup, type TestApp } from '../helpers/app.js';

const opened: TestApp[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const app of opened.splice(0)) await app.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function app(options: Parameters<typeof buildTestApp>[0] = {}): Promise<TestApp> {
  const t = await buildTestApp(options);
  opened.push(t);
  return t;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cleverom-keyed-'));
  dirs.push(dir);
  return dir;
}

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
const key = (): string => randomBytes(32).toString('base64');

interface Row {
  seq: number; id: string; at: string; action: string; actor_type: string; actor_id: string | null; org_id: string | null;
  subject_id: string | null; data: string; pii_commitment: string | null; prev_hash: string; hash: string; mac: string | null; key_id: string | null;
}

function coreOf(r: Pick<Row, 'seq' | 'id' | 'at' | 'action' | 'actor_type' | 'actor_id' | 'org_id' | 'subject_id' | 'data' | 'pii_commitment'>): string {
  const text = canonicalize({
    seq: r.seq, id: r.id, at: r.at, action: r.action, actorType: r.actor_type, actorId: r.actor_id,
    orgId: r.org_id, subjectId: r.subject_id, data: r.data, piiCommitment: r.pii_commitment,
  });
  if (text === undefined) throw new Error('cannot canonicalise');
  return text;
}

/** The two formulas, written here from docs/api.md and not taken from src/. */
const legacyHash = (r: Row, prevHash: string): string => sha256(coreOf(r) + prevHash);
const keyedHash = (r: Row, prevHash: string): string => sha256(sha256(coreOf(r)) + prevHash);

function rows(db: BetterSqlite3.Database): Row[] {
  return db.prepare('SELECT * FROM audit_events ORDER BY seq').all() as Row[];
}

/** Drop the append-only triggers, as a holder of the file can. */
function dropTriggers(db: BetterSqlite3.Database): void {
  db.exec('DROP TRIGGER IF EXISTS audit_events_no_update; DROP TRIGGER IF EXISTS audit_events_no_delete;');
}

/** Delete every event after `seq` with its personal side row, as a careful truncator would. */
function truncateAfter(db: BetterSqlite3.Database, seq: number): void {
  dropTriggers(db);
  db.prepare('DELETE FROM audit_pii WHERE seq > ?').run(seq);
  db.prepare('DELETE FROM audit_events WHERE seq > ?').run(seq);
}

function insertRow(db: BetterSqlite3.Database, r: Row): void {
  db.prepare(
    `INSERT INTO audit_events (seq, id, at, action, actor_type, actor_id, org_id, subject_id, data, pii_commitment, prev_hash, hash, mac, key_id)
     VALUES (@seq, @id, @at, @action, @actor_type, @actor_id, @org_id, @subject_id, @data, @pii_commitment, @prev_hash, @hash, @mac, @key_id)`,
  ).run(r);
}

/** A plausible event after the head, as a forger would write it. */
function forgedAfter(head: Row): Row {
  return {
    seq: head.seq + 1, id: '01900000-0000-7000-8000-00000000f00d', at: head.at, action: 'staff.authz.allowed', actor_type: 'staff',
    actor_id: 'someone', org_id: head.org_id, subject_id: null, data: '{"reason":"routine"}', pii_commitment: null,
    prev_hash: head.hash, hash: '', mac: null, key_id: null,
  };
}

async function someHistory(t: TestApp): Promise<void> {
  const owner = await signup(t.app);
  await login(t.app, owner.email);
  await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: 'not the password at all' } });
  const token = await login(t.app, owner.email);
  await t.app.inject({ method: 'POST', url: '/v1/logout', ...asUser(token) });
}

function checkpointFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.json')).sort() : [];
}

/** The customer's check of a checkpoint with only the published JWK and node's crypto. */
function signatureHolds(checkpoint: Checkpoint, jwk: Record<string, unknown>): boolean {
  const { signature, ...unsigned } = checkpoint;
  return verifySignature(null, Buffer.from(canonicalize(unsigned) ?? '', 'utf8'), createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(signature, 'base64url'));
}

describe('keyed chain', () => {
  it('writes every new event with a digest-linked hash and a MAC under the primary audit key', async () => {
    const t = await app();
    await someHistory(t);
    const all = rows(t.services.database.sqlite);
    let prev = '0'.repeat(64);
    for (const r of all) {
      expect(r.prev_hash).toBe(prev);
      expect(r.hash).toBe(keyedHash(r, prev));
      expect(r.key_id).toBe('k0');
      expect(r.mac).toMatch(/^[0-9a-f]{64}$/);
      prev = r.hash;
    }
    // The MAC is not computable from the database: it is not a hash of anything in the row.
    expect(all.every((r) => r.mac !== sha256(r.hash))).toBe(true);
    expect(t.services.audit.verify()).toEqual({ ok: true, events: all.length });
  });

  it('refuses an appended event whose SHA-256 hash is correctly recomputed but which has no valid MAC', async () => {
    const t = await app();
    await someHistory(t);
    const db = t.services.database.sqlite;
    const head = rows(db).at(-1) as Row;
    dropTriggers(db);
    const forged = forgedAfter(head);
    forged.hash = keyedHash(forged, head.hash);
    forged.key_id = 'k0';
    // A MAC of the forger's own making (the best they can do without the key).
    forged.mac = createHash('sha256').update(`guess:${forged.hash}`).digest('hex');
    insertRow(db, forged);
    expect(t.services.audit.verify()).toMatchObject({ ok: false, brokenSeq: forged.seq, events: head.seq, reason: expect.stringContaining('MAC does not match') });
    db.prepare('UPDATE audit_events SET mac = NULL WHERE seq = ?').run(forged.seq);
    expect(t.services.audit.verify()).toMatchObject({ ok: false, brokenSeq: forged.seq });
  });

  it('refuses an appended event in the legacy format (no key id, no MAC) after keyed events', async () => {
    const t = await app();
    await someHistory(t);
    const db = t.services.database.sqlite;
    const head = rows(db).at(-1) as Row;
    const forged = forgedAfter(head);
    forged.hash = legacyHash(forged, head.hash);
    insertRow(db, forged);
    expect(t.services.audit.verify()).toMatchObject({ ok: false, brokenSeq: forged.seq, reason: expect.stringContaining('legacy-format') });
  });

  it('refuses a history rewritten with consistent hashes (no key): at the first rewritten event, and against a checkpoint', async () => {
    const t = await app();
    await someHistory(t);
    const checkpoint = t.services.auditCheckpoints.checkpointHead();
    if (!checkpoint.ok) throw new Error(checkpoint.reason);
    const db = t.services.database.sqlite;
    dropTriggers(db);
    // Rewrite the failed login (seq 4) as a success, and re-link everything after it.
    const all = rows(db);
    db.prepare('DELETE FROM audit_events WHERE seq >= 4').run();
    let prev = (all[2] as Row).hash;
    for (const r of all.slice(3)) {
      const rewritten = { ...r, prev_hash: prev, ...(r.seq === 4 ? { action: 'auth.login.succeeded', data: '{}' } : {}) };
      rewritten.hash = keyedHash(rewritten, prev);
      insertRow(db, rewritten);
      prev = rewritten.hash;
    }
    expect(t.services.audit.verify()).toMatchObject({ ok: false, brokenSeq: 4, reason: expect.stringContaining('MAC') });
    expect(t.services.auditCheckpoints.verifyAgainst(checkpoint.checkpoint)).toMatchObject({ ok: false, brokenSeq: 4, checkpointSeq: all.length });
  });

  it('cannot see a truncated end without a checkpoint, and names the truncation with one', async () => {
    const t = await app();
    await someHistory(t);
    const checkpoint = t.services.auditCheckpoints.checkpointHead();
    if (!checkpoint.ok) throw new Error(checkpoint.reason);
    const n = checkpoint.checkpoint.seq;
    const db = t.services.database.sqlite;
    truncateAfter(db, n - 3);
    // The documented limit: the remaining chain is consistent, so the plain verification passes.
    expect(t.services.audit.verify()).toEqual({ ok: true, events: n - 3 });
    expect(t.services.auditCheckpoints.verifyAgainst(checkpoint.checkpoint)).toMatchObject({ ok: false, brokenSeq: n - 2, events: n - 3, reason: expect.stringContaining('truncated'), checkpointSeq: n });
    // New events on top of the cut reuse the sequence numbers: now a rewrite of the signed history.
    await someHistory(t);
    expect(t.services.audit.verify().ok).toBe(true);
    expect(t.services.auditCheckpoints.verifyAgainst(checkpoint.checkpoint)).toMatchObject({ ok: false, brokenSeq: n, reason: expect.stringContaining('rewritten') });
    // And the service will not sign a history that contradicts its own checkpoint.
    expect(t.services.auditCheckpoints.checkpointHead()).toMatchObject({ ok: false, reason: expect.stringContaining('rewritten') });
  });

  it('detects with a checkpoint a history rewritten by someone who also holds the audit key', async () => {
    const t = await app();
    await someHistory(t);
    const checkpoint = t.services.auditCheckpoints.checkpointHead();
    if (!checkpoint.ok) throw new Error(checkpoint.reason);
    const db = t.services.database.sqlite;
    dropTriggers(db);
    // The rewriter goes through the service's own append with the real key (as an insider with the key could).
    truncateAfter(db, 3);
    while (t.services.audit.headPosition().seq < checkpoint.checkpoint.seq) {
      t.services.database.transaction(() => t.services.audit.append({ action: 'auth.login.succeeded', actor: { type: 'anonymous', id: null } }));
    }
    expect(t.services.audit.verify()).toEqual({ ok: true, events: checkpoint.checkpoint.seq });
    expect(t.services.auditCheckpoints.verifyAgainst(checkpoint.checkpoint)).toMatchObject({ ok: false, brokenSeq: checkpoint.checkpoint.seq, reason: expect.stringContaining('rewritten') });
  });

  it('refuses a checkpoint whose signature does not hold: edited fields, edited signature, unknown key', async () => {
    const t = await app();
    await someHistory(t);
    const outcome = t.services.auditCheckpoints.checkpointHead();
    if (!outcome.ok) throw new Error(outcome.reason);
    const good = outcome.checkpoint;
    expect(t.services.auditCheckpoints.verifyAgainst(good)).toEqual({ ok: true, events: good.seq, checkpointSeq: good.seq });
    const flipped = Buffer.from(good.signature, 'base64url');
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    for (const forged of [
      { ...good, seq: good.seq - 1, hash: (rows(t.services.database.sqlite)[good.seq - 2] as Row).hash },
      { ...good, at: '2030-01-01T00:00:00.000Z' },
      { ...good, signature: flipped.toString('base64url') },
      { ...good, keyId: 'nobody' },
    ]) {
      expect(t.services.auditCheckpoints.verifyAgainst(forged)).toMatchObject({ ok: false, error: 'checkpoint_invalid' });
    }
  });

  it('writes a signed checkpoint file on the timer when the chain has grown, verifiable with the public key alone', async () => {
    const t = await app();
    const dir = join(t.dir, 'checkpoints');
    await someHistory(t);
    await t.services.auditCheckpoints.tick();
    const [first] = checkpointFiles(dir);
    if (!first) throw new Error('no checkpoint written');
    const checkpoint = JSON.parse(readFileSync(join(dir, first), 'utf8')) as Checkpoint;
    const head = t.services.audit.headPosition();
    expect(checkpoint).toMatchObject({ version: 1, seq: head.seq, hash: head.hash, keyId: 'k0', at: t.clock.now().toISOString() });
    const keys = await t.app.inject({ method: 'GET', url: '/v1/audit/checkpoint-keys' });
    expect(keys.statusCode).toBe(200);
    const [jwk] = keys.json<{ keys: Record<string, unknown>[] }>().keys;
    expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid: 'k0', alg: 'EdDSA' });
    expect(signatureHolds(checkpoint, jwk ?? {})).toBe(true);
    expect(signatureHolds({ ...checkpoint, seq: checkpoint.seq + 1 }, jwk ?? {})).toBe(false);

    // Nothing new: nothing written. New events: a new checkpoint.
    await t.services.auditCheckpoints.tick();
    expect(checkpointFiles(dir)).toHaveLength(1);
    await someHistory(t);
    await t.services.auditCheckpoints.tick();
    expect(checkpointFiles(dir)).toHaveLength(2);

    // A truncated chain is not signed: the newest checkpoint contradicts it.
    const db = t.services.database.sqlite;
    truncateAfter(db, head.seq);
    await someHistory(t);
    await t.services.auditCheckpoints.tick();
    expect(checkpointFiles(dir)).toHaveLength(2);
  });

  it('does not sign over a forged event on the timer either', async () => {
    const t = await app();
    const dir = join(t.dir, 'checkpoints');
    await someHistory(t);
    const db = t.services.database.sqlite;
    const head = rows(db).at(-1) as Row;
    const forged = forgedAfter(head);
    forged.hash = keyedHash(forged, head.hash);
    forged.key_id = 'k0';
    forged.mac = '0'.repeat(64);
    insertRow(db, forged);
    await t.services.auditCheckpoints.tick();
    expect(checkpointFiles(dir)).toEqual([]);
  });
});

/** A database as the service left it before the chain was keyed: the migrations before it, legacy rows. */
function createLegacyDatabase(file: string, events: number): void {
  const folder = tempDir();
  cpSync(MIGRATIONS_FOLDER, folder, { recursive: true });
  const journalFile = join(folder, 'meta', '_journal.json');
  const journal = JSON.parse(readFileSync(journalFile, 'utf8')) as { entries: { tag: string }[] };
  const upgrade = journal.entries.findIndex((e) => e.tag.endsWith('_audit_keyed_chain'));
  expect(upgrade).toBeGreaterThan(0);
  journal.entries = journal.entries.slice(0, upgrade);
  writeFileSync(journalFile, JSON.stringify(journal));
  const db = new BetterSqlite3(file);
  try {
    migrate(drizzle({ client: db }), { migrationsFolder: folder });
    expect((db.prepare('PRAGMA table_info(audit_events)').all() as { name: string }[]).map((c) => c.name)).not.toContain('key_id');
    let prev = '0'.repeat(64);
    const insert = db.prepare(
      `INSERT INTO audit_events (seq, id, at, action, actor_type, actor_id, org_id, subject_id, data, pii_commitment, prev_hash, hash)
       VALUES (@seq, @id, @at, @action, @actor_type, @actor_id, @org_id, @subject_id, @data, @pii_commitment, @prev_hash, @hash)`,
    );
    for (let seq = 1; seq <= events; seq += 1) {
      const r = {
        seq, id: `01900000-0000-7000-8000-${String(seq).padStart(12, '0')}`, at: `2025-06-0${1 + (seq % 9)}T10:00:00.000Z`, action: 'auth.login.succeeded',
        actor_type: 'user', actor_id: `user-${seq}`, org_id: 'org-legacy', subject_id: `user-${seq}`, data: '{"method":"password"}', pii_commitment: null,
        prev_hash: prev, hash: '', mac: null, key_id: null,
      };
      // The formula of every release before the keyed chain.
      r.hash = legacyHash(r, prev);
      insert.run(r);
      prev = r.hash;
    }
  } finally {
    db.close();
  }
}

describe('legacy chains (written before the chain was keyed)', () => {
  it('still verify after the upgrade, get a signed checkpoint on the first start, and continue keyed', async () => {
    const t = await app({ beforeStart: (file) => createLegacyDatabase(file, 5) });
    const dir = join(t.dir, 'checkpoints');
    expect(t.services.audit.verify()).toEqual({ ok: true, events: 5, legacyEvents: 5 });
    // The first start signed the legacy head before anything was appended.
    const files = checkpointFiles(dir);
    expect(files).toHaveLength(1);
    const sealed = JSON.parse(readFileSync(join(dir, files[0] ?? ''), 'utf8')) as Checkpoint;
    const legacyHead = rows(t.services.database.sqlite)[4] as Row;
    expect(sealed).toMatchObject({ seq: 5, hash: legacyHead.hash });

    await someHistory(t);
    const all = rows(t.services.database.sqlite);
    expect(all.slice(0, 5).every((r) => r.key_id === null && r.mac === null)).toBe(true);
    expect(all.slice(5).every((r) => r.key_id === 'k0' && r.mac !== null)).toBe(true);
    // The first keyed event links to the last legacy one.
    expect(all[5]?.prev_hash).toBe(legacyHead.hash);
    expect(t.services.audit.verify()).toEqual({ ok: true, events: all.length, legacyEvents: 5 });
    expect(t.services.auditCheckpoints.verifyAgainst(sealed)).toEqual({ ok: true, events: all.length, legacyEvents: 5, checkpointSeq: 5 });
  });

  it('refuse a legacy-looking row after keyed rows, and catch a whole chain rewritten as legacy with a checkpoint', async () => {
    const t = await app({ beforeStart: (file) => createLegacyDatabase(file, 3) });
    await someHistory(t);
    const keyed = t.services.auditCheckpoints.checkpointHead();
    if (!keyed.ok) throw new Error(keyed.reason);
    const db = t.services.database.sqlite;
    dropTriggers(db);
    const all = rows(db);
    // One keyed row turned into a legacy-format row, hash recomputed with the legacy formula.
    const target = all[5] as Row;
    db.prepare('UPDATE audit_events SET hash = ?, mac = NULL, key_id = NULL WHERE seq = ?').run(legacyHash(target, target.prev_hash), target.seq);
    expect(t.services.audit.verify()).toMatchObject({ ok: false, brokenSeq: target.seq, reason: expect.stringContaining('legacy-format') });

    // The documented limit: every keyed row rewritten as legacy looks like a chain never keyed…
    db.prepare('DELETE FROM audit_events WHERE seq > 3').run();
    let prev = (all[2] as Row).hash;
    for (const r of all.slice(3)) {
      const downgraded = { ...r, prev_hash: prev, mac: null, key_id: null };
      downgraded.hash = legacyHash(downgraded, prev);
      insertRow(db, downgraded);
      prev = downgraded.hash;
    }
    expect(t.services.audit.verify()).toEqual({ ok: true, events: all.length, legacyEvents: all.length });
    // …which the checkpoint taken after the first keyed event refuses.
    expect(t.services.auditCheckpoints.verifyAgainst(keyed.checkpoint)).toMatchObject({ ok: false, reason: expect.stringContaining('rewritten') });
  });
});

describe('key rotation', () => {
  async function onFile(databaseFile: string, env: Record<string, string>): Promise<TestApp> {
    return app({ env: { DATABASE_URL: `file:${databaseFile}`, ...env } });
  }

  it('AUDIT_KEY with a new key first: old events and checkpoints still verify, new events use the new key', async () => {
    const dir = tempDir();
    const file = join(dir, 'rotation.db');
    const secrets = key();
    const [k1, k2] = [key(), key()];
    const before = await onFile(file, { SECRETS_KEY: secrets, AUDIT_KEY: `a1:${k1}` });
    await someHistory(before);
    const old = before.services.auditCheckpoints.checkpointHead();
    if (!old.ok) throw new Error(old.reason);
    await before.app.close();
    opened.splice(opened.indexOf(before), 1);

    const after = await onFile(file, { SECRETS_KEY: secrets, AUDIT_KEY: `a2:${k2},a1:${k1}` });
    await someHistory(after);
    const all = rows(after.services.database.sqlite);
    expect(new Set(all.slice(0, old.checkpoint.seq).map((r) => r.key_id))).toEqual(new Set(['a1']));
    expect(new Set(all.slice(old.checkpoint.seq).map((r) => r.key_id))).toEqual(new Set(['a2']));
    expect(after.services.audit.verify()).toEqual({ ok: true, events: all.length });
    expect(after.services.auditCheckpoints.verifyAgainst(old.checkpoint)).toMatchObject({ ok: true, checkpointSeq: old.checkpoint.seq });
    const published = (await after.app.inject({ method: 'GET', url: '/v1/audit/checkpoint-keys' })).json<{ keys: { kid: string }[] }>();
    expect(published.keys.map((k) => k.kid)).toEqual(['a2', 'a1']);
    await after.app.close();
    opened.splice(opened.indexOf(after), 1);

    // Dropping the old key from the ring leaves its events unverifiable, and says so.
    const dropped = await onFile(file, { SECRETS_KEY: secrets, AUDIT_KEY: `a2:${k2}` });
    expect(dropped.services.audit.verify()).toMatchObject({ ok: false, brokenSeq: 1, reason: expect.stringContaining('a1, which is not in the audit key ring') });
  });

  it('without AUDIT_KEY, derives the keys from SECRETS_KEY by key id, so its rotation keeps old events verifiable', async () => {
    const dir = tempDir();
    const file = join(dir, 'derived.db');
    const [old, next] = [key(), key()];
    const before = await onFile(file, { SECRETS_KEY: `s1:${old}` });
    await someHistory(before);
    await before.app.close();
    opened.splice(opened.indexOf(before), 1);

    const after = await onFile(file, { SECRETS_KEY: `s2:${next},s1:${old}` });
    await someHistory(after);
    const ids = rows(after.services.database.sqlite).map((r) => r.key_id);
    expect(ids[0]).toBe('s1');
    expect(ids.at(-1)).toBe('s2');
    expect(after.services.audit.verify().ok).toBe(true);
    await after.app.close();
    opened.splice(opened.indexOf(after), 1);

    // Moving the audit keys to AUDIT_KEY with the same key material and ids is equivalent.
    const moved = await onFile(file, { SECRETS_KEY: `s3:${key()}`, AUDIT_KEY: `s2:${next},s1:${old}` });
    expect(moved.services.audit.verify().ok).toBe(true);
  });
});
