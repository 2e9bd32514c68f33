import { expect } from 'vitest';
import { totpCodeAt } from '../../src/auth/totp/totp.js';
import { asUser, sessionCookie, type SignedUp, type TestApp } from './app.js';

export { totpCodeAt };

/** Put the org of `owner` on the enterprise plan (feature mfa_totp). */
export async function makeEnterprise(t: TestApp, orgId: string): Promise<void> {
  await t.services.orgs.setPlan(orgId, 'enterprise', { type: 'system', id: null });
}

/**
 * Enrol and confirm TOTP for `user` through the API, as an authenticator app
 * would: read the secret, compute a code. Returns the secret, the recovery
 * codes and the new (AAL2) session token.
 */
export async function enrolTotp(t: TestApp, user: SignedUp): Promise<{ secret: string; recoveryCodes: string[]; token: string }> {
  const start = await t.app.inject({ method: 'POST', url: '/v1/me/mfa/totp', ...asUser(user.token) });
  expect(start.statusCode, start.body).toBe(201);
  const { secret } = start.json<{ secret: string }>();
  const confirm = await t.app.inject({
    method: 'POST',
    url: '/v1/me/mfa/totp/confirm',
    ...asUser(user.token),
    payload: { code: await totpCodeAt(secret, t.clock.now()) },
  });
  expect(confirm.statusCode, confirm.body).toBe(200);
  return { secret, recoveryCodes: confirm.json<{ recoveryCodes: string[] }>().recoveryCodes, token: sessionCookie(confirm) };
}

/** The pending-MFA cookie from a `401 mfa_required` login. */
export function pendingCookie(response: { cookies: { name: string; value: string }[] }): string {
  const cookie = response.cookies.find((c) => c.name === 'cleverom_mfa');
  if (!cookie) throw new Error('no pending MFA cookie');
  return cookie.value;
}
