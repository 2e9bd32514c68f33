import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { asUser, buildTestApp, inviteToken, mailToken, signup, uniqueEmail, type SignedUp, type TestApp } from '../helpers/app.js';
import { enrolTotp, makeEnterprise } from '../helpers/totp.js';

/** NIST SP 800-63B-4: 15 characters, or down to 8 where a second factor is required (API.md "Sign-up"). */
let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

const TEN = 'tq9#vLm2xZ';

async function patch(owner: { orgId: string }, token: string, settings: Record<string, unknown>) {
  return t.app.inject({ method: 'PATCH', url: `/v1/orgs/${owner.orgId}`, ...asUser(token), payload: { settings } });
}

async function mfaOrg(): Promise<{ owner: SignedUp; token: string }> {
  const owner = await signup(t.app);
  await makeEnterprise(t, owner.orgId);
  const { token } = await enrolTotp(t, owner);
  expect((await patch(owner, token, { requireMfa: true, passwordMinLength: 10 })).statusCode).toBe(200);
  return { owner, token };
}

describe('password minimum for organizations that require MFA', () => {
  it('is 15 and cannot be lowered without the mfa_totp feature', async () => {
    const owner = await signup(t.app);
    const response = await patch(owner, owner.token, { passwordMinLength: 10 });
    expect(response.statusCode).toBe(403);
    expect(response.json()).toMatchObject({ code: 'plan_required', feature: 'mfa_totp' });
  });

  it('cannot be lowered while the organization does not require MFA', async () => {
    const owner = await signup(t.app);
    await makeEnterprise(t, owner.orgId);
    const response = await patch(owner, owner.token, { passwordMinLength: 10 });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors[0].field).toBe('settings.passwordMinLength');
  });

  it.each([7, 16])('refuses %i (range 8..15)', async (value) => {
    const owner = await signup(t.app);
    expect((await patch(owner, owner.token, { passwordMinLength: value })).statusCode).toBe(400);
  });

  it('applies the lower minimum to invitation acceptance and password reset, never below it', async () => {
    const { owner, token } = await mfaOrg();
    const email = uniqueEmail('short');
    await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/invitations`, ...asUser(token), payload: { email, role: 'member' } });
    const tooShort = await t.app.inject({ method: 'POST', url: '/v1/invitations/accept', payload: { token: inviteToken(t, email), name: 'Shorty', password: 'tq9#vLm2x', ageConfirmed: true } });
    expect(tooShort.statusCode).toBe(400);
    const accepted = await t.app.inject({ method: 'POST', url: '/v1/invitations/accept', payload: { token: inviteToken(t, email), name: 'Shorty', password: TEN, ageConfirmed: true } });
    expect(accepted.statusCode).toBe(201);

    await t.app.inject({ method: 'POST', url: '/v1/password-reset', payload: { email } });
    const reset = await t.app.inject({ method: 'POST', url: '/v1/password-reset/confirm', payload: { token: mailToken(t, email, 'password_reset'), newPassword: 'Zx8!pq2Lmn' } });
    expect(reset.statusCode).toBe(204);
  });

  it('returns to 15 when the organization stops requiring MFA', async () => {
    const { owner, token } = await mfaOrg();
    expect((await patch(owner, token, { requireMfa: false })).statusCode).toBe(200);
    await t.app.inject({ method: 'POST', url: '/v1/password-reset', payload: { email: owner.email } });
    const reset = await t.app.inject({ method: 'POST', url: '/v1/password-reset/confirm', payload: { token: mailToken(t, owner.email, 'password_reset'), newPassword: TEN } });
    expect(reset.statusCode).toBe(400);
  });

  it('does not lower the minimum of other organizations', async () => {
    await mfaOrg();
    const other = await signup(t.app);
    await t.app.inject({ method: 'POST', url: '/v1/password-reset', payload: { email: other.email } });
    const reset = await t.app.inject({ method: 'POST', url: '/v1/password-reset/confirm', payload: { token: mailToken(t, other.email, 'password_reset'), newPassword: TEN } });
    expect(reset.statusCode).toBe(400);
  });
});
