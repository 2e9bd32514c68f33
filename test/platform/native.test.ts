import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PasswordHasher } from '../../src/auth/password/hasher.js';
import { ARGON2_FLOOR } from '../../src/config/load-config.js';
import { migrateSqlite, openSqlite, type SqliteDatabase } from '../../src/platform/db/sqlite.js';

/**
 * The two native add-ons the service cannot run without — argon2 and
 * better-sqlite3 — exercised directly, so a broken prebuild or a Node ABI
 * mismatch fails here with a clear name rather than somewhere deep in a route.
 */

describe('argon2 (PasswordHasher)', () => {
  const hasher = new PasswordHasher(ARGON2_FLOOR);

  it('hashes with argon2id at the configured parameters, salted', async () => {
    const a = await hasher.hash('correct horse battery staple');
    const b = await hasher.hash('correct horse battery staple');
    const match = /^\$argon2id\$v=19\$([a-z=0-9,]+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/.exec(a);
    expect(match, a).not.toBeNull();
    const params = Object.fromEntries((match?.[1] ?? '').split(',').map((kv) => kv.split('=')));
    expect(params).toEqual({ m: '19456', t: '2', p: '1' });
    expect(a).not.toBe(b);
    expect(a).not.toContain('correct horse');
  });

  it('verifies the right password and refuses a wrong one', async () => {
    const hash = await hasher.hash('correct horse battery staple');
    expect(await hasher.verify(hash, 'correct horse battery staple')).toEqual({ ok: true, needsRehash: false });
    expect((await hasher.verify(hash, 'correct horse battery stapl')).ok).toBe(false);
    expect((await hasher.verify(hash, 'Correct horse battery staple')).ok).toBe(false);
    expect((await hasher.verify(hash, '')).ok).toBe(false);
  });

  it('handles non-ASCII passwords byte-exactly', async () => {
    const hash = await hasher.hash('pässwörd ünïcödé 🦊 long');
    expect((await hasher.verify(hash, 'pässwörd ünïcödé 🦊 long')).ok).toBe(true);
    expect((await hasher.verify(hash, 'passwoerd uenicoede 🦊 long')).ok).toBe(false);
  });

  it('never accepts anything for an account without a hash (dummy verification)', async () => {
    expect(await hasher.verify(null, 'dummy password for unknown accounts')).toEqual({ ok: false, needsRehash: false });
    expect(await hasher.verify(null, 'anything')).toEqual({ ok: false, needsRehash: false });
  });

  it('treats a corrupt stored hash as a mismatch, not a crash', async () => {
    expect((await hasher.verify('$argon2id$garbage', 'whatever')).ok).toBe(false);
    expect((await hasher.verify('plain text', 'plain text')).ok).toBe(false);
  });

  it('asks for a rehash when the configured parameters rise', async () => {
    const hash = await hasher.hash('correct horse battery staple');
    const stronger = new PasswordHasher({ ...ARGON2_FLOOR, timeCost: ARGON2_FLOOR.timeCost + 1 });
    expect(await stronger.verify(hash, 'correct horse battery staple')).toEqual({ ok: true, needsRehash: true });
    expect(await stronger.verify(hash, 'wrong')).toEqual({ ok: false, needsRehash: false });
    const rehashed = await stronger.hash('correct horse battery staple');
    expect(rehashed).toContain('t=3');
    expect(await stronger.verify(rehashed, 'correct horse battery staple')).toEqual({ ok: true, needsRehash: false });
  });
});

describe('better-sqlite3 (openSqlite + migrateSqlite)', () => {
  let dir: string;
  let database: SqliteDatabase;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cleverom-native-'));
    database = openSqlite(join(dir, 'nested', 'native.db'));
  });
  afterEach(() => {
    database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the file (and its folder) in WAL mode with foreign keys on', () => {
    expect(existsSync(join(dir, 'nested', 'native.db'))).toBe(true);
    expect(database.sqlite.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(database.sqlite.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(database.sqlite.pragma('busy_timeout', { simple: true })).toBe(5000);
    expect(database.ping()).toBe(true);
  });

  it('migrates to the tables the service uses, and a second run is a no-op', () => {
    migrateSqlite(database);
    const tables = () =>
      (database.sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    const first = tables();
    for (const table of ['orgs', 'users', 'sessions', 'login_throttle', 'password_reset_tokens', 'rate_limit_log', 'audit_events']) {
      expect(first).toContain(table);
    }
    migrateSqlite(database);
    expect(tables()).toEqual(first);
  });

  it('enforces the schema: unique emails and foreign keys', () => {
    migrateSqlite(database);
    const now = Date.now();
    database.sqlite
      .prepare('INSERT INTO orgs (id, name, slug, plan, settings, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run('o1', 'Org', 'org', 'free', '{}', now, now);
    const insertUser = database.sqlite.prepare('INSERT INTO users (id, email, name, org_id, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
    insertUser.run('u1', 'a@example.com', 'A', 'o1', 'owner', now, now);
    expect(() => insertUser.run('u2', 'a@example.com', 'B', 'o1', 'member', now, now)).toThrow(/UNIQUE/);
    expect(() => insertUser.run('u3', 'c@example.com', 'C', 'no-such-org', 'member', now, now)).toThrow(/FOREIGN KEY/);
  });

  it('rolls a failed transaction back completely', () => {
    migrateSqlite(database);
    const now = Date.now();
    expect(() =>
      database.transaction(() => {
        database.sqlite
          .prepare('INSERT INTO orgs (id, name, slug, plan, settings, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
          .run('o1', 'Org', 'org', 'free', '{}', now, now);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(database.sqlite.prepare('SELECT COUNT(*) AS n FROM orgs').get()).toEqual({ n: 0 });
  });

  it('ping() reports false once closed, and close() twice is safe', () => {
    database.close();
    expect(database.ping()).toBe(false);
    expect(() => database.close()).not.toThrow();
  });
});
