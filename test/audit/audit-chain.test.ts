import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GOOD_PASSWORD, asUser, auditActions, buildTestApp, login, signup, type TestApp } from '../helpers/app.js';

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

/** An attacker with write access to the database file (the triggers are no obstacle to them). */
function tamper(sql: string, ...args: unknown[]): void {
  const db = t.services.database.sqlite;
  db.exec('DROP TRIGGER IF EXISTS audit_events_no_update; DROP TRIGGER IF EXISTS audit_events_no_delete;');
  db.prepare(sql).run(...args);
}

async function someHistory(): Promise<void> {
  const owner = await signup(t.app);
  await login(t.app, owner.email);
  await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: 'not the password at all' } });
  await t.app.inject({ method: 'POST', url: '/v1/logout', ...asUser(owner.token) });
}

describe('audit chain', () => {
  it('records each action in order with a gapless sequence and a verifying chain', async () => {
    await someHistory();
    expect(auditActions(t)).toEqual(['org.created', 'user.signup', 'auth.login.succeeded', 'auth.login.failed', 'auth.logout']);
    const seqs = (t.services.database.sqlite.prepare('SELECT seq FROM audit_events ORDER BY seq').all() as { seq: number }[]).map((r) => r.seq);
    expect(seqs).toEqual([1, 2, 3, 4, 5]);
    expect(t.services.audit.verify()).toEqual({ ok: true, events: 5 });
  });

  it('keeps personal data (IP, user agent, email) out of the hashed rows', async () => {
    const owner = await signup(t.app);
    await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: GOOD_PASSWORD }, headers: { 'user-agent': 'UniqueAgent/9.9' } });
    const hashed = JSON.stringify(t.services.database.sqlite.prepare('SELECT * FROM audit_events').all());
    expect(hashed).not.toContain('UniqueAgent');
    expect(hashed).not.toContain('127.0.0.1');
    expect(hashed).not.toContain(owner.email);
    const side = JSON.stringify(t.services.database.sqlite.prepare('SELECT * FROM audit_pii').all());
    expect(side).toContain('UniqueAgent');
  });

  it('still verifies after the personal side rows are erased', async () => {
    await someHistory();
    t.services.database.sqlite.prepare('DELETE FROM audit_pii').run();
    expect(t.services.audit.verify().ok).toBe(true);
  });

  it('refuses UPDATE and DELETE on audit rows from any client', async () => {
    await someHistory();
    const db = t.services.database.sqlite;
    expect(() => db.prepare("UPDATE audit_events SET action = 'x' WHERE seq = 1").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit_events WHERE seq = 1').run()).toThrow(/append-only/);
  });

  it('rolls the action back when its audit event cannot be written (fail closed)', async () => {
    const owner = await signup(t.app);
    // Make every audit insert fail: the login must not issue a session.
    t.services.database.sqlite.exec(
      "CREATE TRIGGER audit_block BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit store unavailable'); END;",
    );
    const before = (t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM sessions').get() as { n: number }).n;
    const response = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: GOOD_PASSWORD } });
    expect(response.statusCode).toBe(500);
    expect(response.cookies.find((c) => c.name === 'cleverom_session')).toBeUndefined();
    const after = (t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM sessions').get() as { n: number }).n;
    expect(after).toBe(before);
  });

  /** Attack: an insider edits, deletes or reorders audit rows to hide an action. */
  describe('tamper detection', () => {
    it('detects edited personal data beside the chain (the IP of a login), at its event', async () => {
      await someHistory();
      const row = t.services.database.sqlite.prepare("SELECT p.seq, p.data FROM audit_pii p JOIN audit_events e ON e.seq = p.seq WHERE e.action = 'auth.login.failed'").get() as { seq: number; data: string };
      expect(row.data).toContain('127.0.0.1');
      tamper('UPDATE audit_pii SET data = ? WHERE seq = ?', row.data.replace('127.0.0.1', '198.51.100.66'), row.seq);
      expect(t.services.audit.verify()).toMatchObject({ ok: false, brokenSeq: row.seq, reason: expect.stringContaining('personal data') });
    });

    it('detects personal data attached to an event that committed to none', async () => {
      await someHistory();
      const bare = t.services.database.sqlite.prepare('SELECT seq FROM audit_events WHERE pii_commitment IS NULL ORDER BY seq LIMIT 1').get() as { seq: number } | undefined;
      if (!bare) throw new Error('every event of the history carries personal data');
      const donor = t.services.database.sqlite.prepare('SELECT user_id, salt, data FROM audit_pii LIMIT 1').get() as { user_id: string | null; salt: string; data: string };
      tamper('INSERT INTO audit_pii (seq, user_id, salt, data) VALUES (?, ?, ?, ?)', bare.seq, donor.user_id, donor.salt, donor.data);
      expect(t.services.audit.verify()).toMatchObject({ ok: false, brokenSeq: bare.seq });
    });

    it('detects an edited row at its sequence number', async () => {
      await someHistory();
      tamper("UPDATE audit_events SET data = '{\"reason\":\"nothing to see\"}' WHERE seq = 4");
      expect(t.services.audit.verify()).toMatchObject({ ok: false, brokenSeq: 4 });
    });

    it('detects an edited actor even when the data is untouched', async () => {
      await someHistory();
      tamper("UPDATE audit_events SET actor_id = 'someone-else' WHERE seq = 3");
      expect(t.services.audit.verify()).toMatchObject({ ok: false, brokenSeq: 3 });
    });

    it('detects a deleted row (gap in the sequence)', async () => {
      await someHistory();
      tamper('DELETE FROM audit_events WHERE seq = 2');
      expect(t.services.audit.verify()).toMatchObject({ ok: false, brokenSeq: 2 });
    });

    it('detects a deleted middle row even when the later rows are renumbered to close the gap', async () => {
      await someHistory();
      tamper('DELETE FROM audit_events WHERE seq = 3');
      tamper('UPDATE audit_events SET seq = seq - 1 WHERE seq > 3');
      expect(t.services.audit.verify()).toMatchObject({ ok: false, brokenSeq: 3 });
    });

    it('detects two rows swapped (reordered)', async () => {
      await someHistory();
      tamper('UPDATE audit_events SET seq = -2 WHERE seq = 2');
      tamper('UPDATE audit_events SET seq = 2 WHERE seq = 3');
      tamper('UPDATE audit_events SET seq = 3 WHERE seq = -2');
      expect(t.services.audit.verify()).toMatchObject({ ok: false, brokenSeq: 2 });
    });

    it('detects a row whose hash was recomputed by a forger, at that row (its MAC needs the audit key)', async () => {
      await someHistory();
      const { eventDigest, linkHash } = await import('../../src/audit/chain.js');
      const row = t.services.database.sqlite.prepare('SELECT * FROM audit_events WHERE seq = 2').get() as Record<string, string | number | null>;
      const forged = linkHash(
        eventDigest({
          seq: 2, id: String(row.id), at: String(row.at), action: 'user.signup', actorType: String(row.actor_type),
          actorId: row.actor_id as string | null, orgId: row.org_id as string | null, subjectId: row.subject_id as string | null,
          data: '{"role":"member"}', piiCommitment: row.pii_commitment as string | null,
        }),
        String(row.prev_hash),
      );
      tamper('UPDATE audit_events SET data = ?, hash = ? WHERE seq = 2', '{"role":"member"}', forged);
      expect(t.services.audit.verify()).toMatchObject({ ok: false, brokenSeq: 2, reason: expect.stringContaining('MAC') });
    });
  });
});
