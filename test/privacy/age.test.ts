/**
 * No service to people under 16: sign-up and invitation acceptance require
 * `ageConfirmed: true` (else `400 age_restricted`), and only the attestation
 * time is stored — no birth date or age anywhere in the schema.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GOOD_PASSWORD, asUser, buildTestApp, inviteToken, signup, uniqueEmail, type TestApp } from '../helpers/app.js';

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

const userCount = (): number => (t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM users').get() as { n: number }).n;

describe('16+ attestation', () => {
  it('refuses sign-up without it (400 age_restricted) and creates nothing', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/v1/signup',
      payload: { orgName: 'Teen Oy', name: 'Young', email: uniqueEmail(), password: GOOD_PASSWORD, ageConfirmed: false },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'age_restricted', status: 400 });
    expect(userCount()).toBe(0);
    expect((t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM orgs').get() as { n: number }).n).toBe(0);
    const missing = await t.app.inject({ method: 'POST', url: '/v1/signup', payload: { orgName: 'Teen Oy', name: 'Young', email: uniqueEmail(), password: GOOD_PASSWORD } });
    expect(missing.statusCode).toBe(400);
    expect(userCount()).toBe(0);
  });

  it('refuses invitation acceptance without it, and the invitation stays usable', async () => {
    const owner = await signup(t.app);
    const email = uniqueEmail('teen');
    await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/invitations`, ...asUser(owner.token), payload: { email, role: 'member' } });
    const token = inviteToken(t, email);
    const refused = await t.app.inject({ method: 'POST', url: '/v1/invitations/accept', payload: { token, name: 'Young', password: GOOD_PASSWORD, ageConfirmed: false } });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().code).toBe('age_restricted');
    expect(userCount()).toBe(1);
    const accepted = await t.app.inject({ method: 'POST', url: '/v1/invitations/accept', payload: { token, name: 'Adult', password: GOOD_PASSWORD, ageConfirmed: true } });
    expect(accepted.statusCode).toBe(201);
  });

  it('stores only the time of the attestation, and no birth date or age column exists', async () => {
    const owner = await signup(t.app);
    const row = t.services.database.sqlite.prepare('SELECT age_confirmed_at FROM users WHERE id = ?').get(owner.userId) as { age_confirmed_at: number };
    expect(row.age_confirmed_at).toBe(t.clock.now().getTime());
    const tables = t.services.database.sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
    for (const { name } of tables) {
      const columns = t.services.database.sqlite.prepare(`PRAGMA table_info("${name}")`).all() as { name: string }[];
      for (const column of columns) expect(`${name}.${column.name}`).not.toMatch(/birth|dob|\.age$|_age$/i);
    }
  });
});
