import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, signup, type SignedUp, type TestApp } from '../helpers/app.js';
import { approve, bearer, createStaff, requestAccess, type StaffUser } from '../helpers/staff.js';
import { makeEnterprise } from '../helpers/totp.js';
import { AppError } from '../../src/platform/errors.js';

/**
 * Attack: an NDA "on record" that was never signed (issue 23 item 6). An
 * operator (or a script) records an NDA dated in the future — a promise, not
 * a signature — and the staff member gets production access today.
 * SECURITY.md "staff": no NDA on record (signed on or before today) → no grant.
 * The test clock's today is 2026-01-15.
 */

let t: TestApp;
let customer: SignedUp;
let admin: StaffUser;

beforeEach(async () => {
  t = await buildTestApp();
  customer = await signup(t.app);
  await makeEnterprise(t, customer.orgId);
  admin = await createStaff(t, 'security_admin');
});
afterEach(async () => {
  await t.close();
});

async function refusal(ndaSignedAt: string): Promise<unknown> {
  try {
    await t.services.staff.createStaff({ email: `nda-${ndaSignedAt}@cleverom.fi`, name: 'Nina Nda', role: 'support', ndaSignedAt, password: 'correct horse battery staple' });
    return null;
  } catch (error) {
    return error;
  }
}

describe('staff:create refuses an NDA that has not been signed yet', () => {
  it.each([['tomorrow', '2026-01-16'], ['next year', '2027-01-15']])('refuses a date %s with validation_failed and creates nobody', async (_label, date) => {
    const error = await refusal(date);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('validation_failed');
    expect(JSON.stringify((error as AppError).extra)).toContain('after today');
    expect(t.services.database.sqlite.prepare("SELECT COUNT(*) AS n FROM users WHERE email LIKE 'nda-%'").get()).toEqual({ n: 0 });
  });

  it('refuses a date that does not exist (2026-02-31)', async () => {
    expect(((await refusal('2026-02-31')) as AppError).code).toBe('validation_failed');
  });

  it('accepts today and earlier', async () => {
    expect(await refusal('2026-01-15')).toBeNull();
    expect(await refusal('2025-12-31')).toBeNull();
  });
});

describe('a future NDA date already in the database counts for nothing', () => {
  it('refuses requests and ignores an approved grant until the date comes (no_nda)', async () => {
    const support = await createStaff(t, 'support');
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    expect((await approve(t, admin, id)).statusCode).toBe(200);
    // A row written before the CLI checked dates (or behind its back).
    t.services.database.sqlite.prepare('UPDATE staff_members SET nda_signed_at = ? WHERE user_id = ?').run('2026-03-01', support.id);

    const read = await t.app.inject({ method: 'GET', url: `/v1/staff/orgs/${customer.orgId}`, ...bearer(support.token) });
    expect(read.statusCode).toBe(403);
    expect(read.json()).toMatchObject({ code: 'access_grant_required', reason: 'no_nda' });
    const again = await t.app.inject({
      method: 'POST',
      url: '/v1/staff/access-requests',
      ...bearer(support.token),
      payload: { orgId: customer.orgId, scope: 'read', reason: 'Customer ticket about login trouble' },
    });
    expect(again.statusCode).toBe(403);
    expect(again.json().code).toBe('forbidden');
    const service = await t.services.staff.check({ staffId: support.id, orgId: customer.orgId, action: 'read', resource: 'x', serviceId: 'svc', requestId: 'r' });
    expect(service).toEqual({ allow: false, reason: 'no_nda' });
  });
});
