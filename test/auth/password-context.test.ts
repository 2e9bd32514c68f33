import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../src/platform/errors.js';
import { GOOD_PASSWORD, asUser, buildTestApp, inviteToken, mailToken, signup, type TestApp } from '../helpers/app.js';

/**
 * Attack: targeted guessing with what is known about the person (issue 23
 * item 4). An attacker tries `<organization><email local part><year>!` and
 * keyboard walks before anything else. NIST SP 800-63B-4 §3.1.1.2: new
 * passwords are compared against context-specific words (the service name,
 * the person's email and organization) and sequential or repetitive
 * patterns, and a refusal says why. Every place a password is chosen is
 * covered: sign-up, invitation, change, reset, staff creation.
 */

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

const ORG = 'Nordwind Logistics';
const CONTEXT_PASSWORD = (email: string) => `NordwindLogistics${email.split('@')[0]}2024!`;
const WALK = 'qwertyuiopasdfgh';

function passwordProblem(response: { statusCode: number; json(): { code: string; errors?: { field: string; message: string }[] } }, field: string): string {
  expect(response.statusCode).toBe(400);
  const body = response.json();
  expect(body.code).toBe('validation_failed');
  const error = body.errors?.find((e) => e.field === field);
  expect(error, JSON.stringify(body)).toBeDefined();
  return error?.message ?? '';
}

const postSignup = (email: string, password: string) =>
  t.app.inject({ method: 'POST', url: '/v1/signup', payload: { orgName: ORG, name: 'Mika Lehto', email, password, ageConfirmed: true } });

describe('context-specific words and patterns', () => {
  it('refuses <organization><email local part>2024! at sign-up, saying why, and creates nothing', async () => {
    const email = 'mika.lehto@example.com';
    const message = passwordProblem(await postSignup(email, CONTEXT_PASSWORD(email)), 'password');
    expect(message).toContain('organization');
    expect(t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM users').get()).toEqual({ n: 0 });
  });

  it.each([WALK, 'Cleverom2024!Cleverom', 'abcd1234abcd1234', 'horsehorsehorsehorse'])('refuses %s at sign-up', async (password) => {
    const message = passwordProblem(await postSignup('mika.lehto@example.com', password), 'password');
    expect(message).toMatch(/too easy to guess/);
  });

  it('says a keyboard walk is a keyboard pattern', async () => {
    expect(passwordProblem(await postSignup('mika.lehto@example.com', WALK), 'password')).toContain('keyboard');
  });

  it.each([GOOD_PASSWORD, 'nordwind trucks roll at dawn', '7#k2$9@x!4&m1^p3', 'liberty property poverty'])('accepts %s', async (password) => {
    expect((await postSignup('mika.lehto@example.com', password)).statusCode).toBe(201);
  });

  it('refuses them as a new password at change and at reset', async () => {
    const owner = await signup(t.app, { orgName: ORG, email: 'aino.virta@example.com' });
    for (const newPassword of [CONTEXT_PASSWORD(owner.email), WALK]) {
      const change = await t.app.inject({ method: 'POST', url: '/v1/me/password', ...asUser(owner.token), payload: { currentPassword: GOOD_PASSWORD, newPassword } });
      expect(passwordProblem(change, 'newPassword')).toMatch(/too easy to guess/);
    }
    await t.app.inject({ method: 'POST', url: '/v1/password-reset', payload: { email: owner.email } });
    const token = mailToken(t, owner.email, 'password_reset');
    for (const newPassword of [CONTEXT_PASSWORD(owner.email), WALK]) {
      const reset = await t.app.inject({ method: 'POST', url: '/v1/password-reset/confirm', payload: { token, newPassword } });
      expect(passwordProblem(reset, 'newPassword')).toMatch(/too easy to guess/);
    }
    // The token survives the refusals.
    expect((await t.app.inject({ method: 'POST', url: '/v1/password-reset/confirm', payload: { token, newPassword: 'a brand new passphrase for me' } })).statusCode).toBe(204);
  });

  it('refuses them when accepting an invitation (the organization and the invited email are context)', async () => {
    const owner = await signup(t.app, { orgName: ORG });
    const email = 'sanna.koski@example.com';
    expect((await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/invitations`, ...asUser(owner.token), payload: { email, role: 'member' } })).statusCode).toBe(201);
    const token = inviteToken(t, email);
    for (const password of [CONTEXT_PASSWORD(email), WALK]) {
      const accept = await t.app.inject({ method: 'POST', url: '/v1/invitations/accept', payload: { token, name: 'Sanna Koski', password, ageConfirmed: true } });
      expect(passwordProblem(accept, 'password')).toMatch(/too easy to guess/);
    }
  });

  it('refuses them at staff creation (the service name and the person are context)', async () => {
    for (const password of ['Cleverom-PekkaStaff-2026!', WALK]) {
      const error = await t.services.staff
        .createStaff({ email: 'pekka.staff@cleverom.fi', name: 'Pekka Staff', role: 'support', ndaSignedAt: '2026-01-02', password })
        .then(() => null, (e: unknown) => e);
      expect(error).toBeInstanceOf(AppError);
      expect(JSON.stringify((error as AppError).extra)).toContain('too easy to guess');
    }
  });
});
