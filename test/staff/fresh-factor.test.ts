import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GOOD_PASSWORD, asUser, buildTestApp, sessionCookie, signup, type SignedUp, type TestApp } from '../helpers/app.js';
import { approve, bearer, createStaff, requestAccess, type StaffUser } from '../helpers/staff.js';
import { makeEnterprise, totpCodeAt } from '../helpers/totp.js';

/**
 * Attack: a staff session left open (issue 23 item 5). Someone at an
 * unlocked desk, or holding a stolen staff token kept alive by polling,
 * approves production access long after the staff member last proved a
 * second factor. SECURITY.md "staff": requesting, approving (and deciding)
 * need a second factor within the last 10 minutes; a password-only
 * reauthentication does not count.
 */

const MINUTE = 60_000;
const STEP = 30_000;

let t: TestApp;
let customer: SignedUp;
let support: StaffUser;
let admin: StaffUser;

beforeEach(async () => {
  t = await buildTestApp();
  customer = await signup(t.app);
  await makeEnterprise(t, customer.orgId);
  support = await createStaff(t, 'support');
  admin = await createStaff(t, 'security_admin');
});
afterEach(async () => {
  await t.close();
});

/** Keep both staff sessions alive (15 min idle limit) while `minutes` pass. */
async function keepAlive(minutes: number): Promise<void> {
  for (let left = minutes; left > 0; left -= 5) {
    t.clock.advance(Math.min(5, left) * MINUTE);
    for (const staff of [support, admin]) {
      expect((await t.app.inject({ method: 'GET', url: '/v1/staff/access-requests', ...bearer(staff.token) })).statusCode).toBe(200);
    }
  }
}

async function reauthenticate(staff: StaffUser, payload: Record<string, string>): Promise<number> {
  const response = await t.app.inject({ method: 'POST', url: '/v1/me/reauthenticate', ...bearer(staff.token), payload });
  if (response.statusCode === 204) staff.token = String(response.headers['cleverom-session-token']);
  return response.statusCode;
}

const decide = (staff: StaffUser, id: string, verb: 'approve' | 'deny') =>
  t.app.inject({ method: 'POST', url: `/v1/staff/access-requests/${id}/${verb}`, ...bearer(staff.token), payload: {} });

describe('staff decisions need a second factor within 10 minutes', () => {
  it('refuses an approval 35 minutes after the last second factor on a session kept alive (401 reauthentication_required)', async () => {
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    await keepAlive(35);
    const stale = await approve(t, admin, id);
    expect(stale.statusCode).toBe(401);
    expect(stale.body).toMatchObject({ code: 'reauthentication_required', reason: 'second_factor_required' });
    const row = t.services.database.sqlite.prepare('SELECT status FROM access_requests WHERE id = ?').get(id);
    expect(row).toEqual({ status: 'pending' });
  });

  it('does not count a password-only reauthentication; a code does', async () => {
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    await keepAlive(35);
    expect(await reauthenticate(admin, { password: GOOD_PASSWORD })).toBe(204);
    const afterPassword = await approve(t, admin, id);
    expect(afterPassword.statusCode).toBe(401);
    expect(afterPassword.body).toMatchObject({ code: 'reauthentication_required', reason: 'second_factor_required' });

    t.clock.advance(STEP);
    expect(await reauthenticate(admin, { code: await totpCodeAt(admin.secret, t.clock.now()) })).toBe(204);
    const approved = await approve(t, admin, id);
    expect(approved.statusCode).toBe(200);
    expect(approved.body).toMatchObject({ id, status: 'active' });
  });

  it('the code counts for 10 minutes only', async () => {
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    await keepAlive(20);
    t.clock.advance(STEP);
    expect(await reauthenticate(admin, { code: await totpCodeAt(admin.secret, t.clock.now()) })).toBe(204);
    await keepAlive(10);
    expect((await decide(admin, id, 'deny')).statusCode).toBe(401);
  });

  it('needs it to deny, and to request access, too', async () => {
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    await keepAlive(15);
    const deny = await decide(admin, id, 'deny');
    expect(deny.statusCode).toBe(401);
    expect(deny.json().code).toBe('reauthentication_required');
    const request = await t.app.inject({
      method: 'POST',
      url: '/v1/staff/access-requests',
      ...bearer(support.token),
      payload: { orgId: customer.orgId, scope: 'read', reason: 'Customer ticket about login trouble' },
    });
    expect(request.statusCode).toBe(401);
    expect(request.json().code).toBe('reauthentication_required');
    t.clock.advance(STEP);
    expect(await reauthenticate(support, { code: await totpCodeAt(support.secret, t.clock.now()) })).toBe(204);
    expect((await t.app.inject({ method: 'POST', url: '/v1/staff/access-requests', ...bearer(support.token), payload: { orgId: customer.orgId, scope: 'read', reason: 'Customer ticket about login trouble' } })).statusCode).toBe(201);
  });

  it('accepts a decision right after an AAL2 login (the login proved the second factor)', async () => {
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    await keepAlive(30);
    t.clock.advance(STEP);
    const password = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: admin.email, password: GOOD_PASSWORD } });
    expect(password.statusCode).toBe(401);
    const pending = password.cookies.find((c) => c.name === 'cleverom_mfa')?.value ?? '';
    const mfa = await t.app.inject({ method: 'POST', url: '/v1/login/mfa', cookies: { cleverom_mfa: pending }, payload: { code: await totpCodeAt(admin.secret, t.clock.now()) } });
    expect(mfa.statusCode).toBe(200);
    admin.token = sessionCookie(mfa);
    expect((await approve(t, admin, id)).statusCode).toBe(200);
  });

  it('sends the staff console to the confirm page asking for a code, without a password field', async () => {
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    await keepAlive(35);
    const page = await t.app.inject({ method: 'POST', url: `/staff/access-requests/${id}/approve`, ...asUser(admin.token), payload: {} });
    expect(page.statusCode).toBe(303);
    expect(page.headers.location).toBe(`/account/confirm?returnTo=${encodeURIComponent('/staff')}&factor=code`);
    const confirm = await t.app.inject({ method: 'GET', url: String(page.headers.location), ...asUser(admin.token) });
    expect(confirm.statusCode).toBe(200);
    expect(confirm.body).toContain('a password alone is not enough');
    expect(confirm.body).not.toContain('name="password"');
    expect(confirm.body).toContain('name="code"');
    // Revoking (ending access early) needs no fresh factor: it reaches the form check, not the confirm page.
    const revoke = await t.app.inject({ method: 'POST', url: `/staff/access-requests/${id}/revoke`, ...asUser(admin.token), payload: {} });
    expect(revoke.headers.location ?? '').not.toContain('/account/confirm');
  });
});
