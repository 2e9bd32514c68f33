import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { purgeExpired } from '../../src/housekeeping/sqlite-housekeeping.js';
import { asUser, buildTestApp, login, signup, uniqueEmail, type TestApp } from '../helpers/app.js';

/** Storage limitation (GDPR Art. 5(1)(e)): rows whose purpose has ended are deleted. */
let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

const count = (table: string): number => (t.services.database.sqlite.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;

describe('purgeExpired', () => {
  it('deletes expired sessions, old reset tokens and old invitations, and keeps live ones', async () => {
    const owner = await signup(t.app);
    const idle = await login(t.app, owner.email);
    expect(idle).toBeTruthy();
    await t.app.inject({ method: 'POST', url: '/v1/password-reset', payload: { email: owner.email } });
    await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/invitations`, ...asUser(owner.token), payload: { email: uniqueEmail('late'), role: 'member' } });
    expect(count('sessions')).toBe(2);

    // 50 minutes on, keep the owner's first session alive; the other idles out at 60.
    t.clock.advance(50 * 60_000);
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(owner.token) })).statusCode).toBe(200);
    t.clock.advance(15 * 60_000);
    expect(purgeExpired(t.services.database, t.clock.now())).toMatchObject({ sessions: 1, passwordResetTokens: 0, invitations: 0 });
    expect(count('sessions')).toBe(1);
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(owner.token) })).statusCode).toBe(200);

    // A day after the reset token expired, and 30 days after the invitation did.
    t.clock.advance(38 * 24 * 3600_000);
    const counts = purgeExpired(t.services.database, t.clock.now());
    expect(counts).toMatchObject({ passwordResetTokens: 1, invitations: 1, sessions: 1 });
    expect(count('password_reset_tokens') + count('invitations') + count('sessions')).toBe(0);
    expect(t.services.audit.verify().ok).toBe(true);
  });
});
