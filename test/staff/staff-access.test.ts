import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addMember, asUser, auditActions, buildTestApp, signup, type SignedUp, type TestApp } from '../helpers/app.js';
import { approve, bearer, createStaff, requestAccess, type StaffUser } from '../helpers/staff.js';
import { makeEnterprise } from '../helpers/totp.js';

let t: TestApp;
let customer: SignedUp;
let support: StaffUser;
let admin: StaffUser;

beforeEach(async () => {
  t = await buildTestApp();
  customer = await signup(t.app);
  await makeEnterprise(t, customer.orgId);
  support = await createStaff(t, 'support', { name: 'Sam Support' });
  admin = await createStaff(t, 'security_admin');
});
afterEach(async () => {
  await t.close();
});

const read = (staff: StaffUser, path = '') => t.app.inject({ method: 'GET', url: `/v1/staff/orgs/${customer.orgId}${path}`, ...bearer(staff.token) });

function events(action: string): { actor_id: string; org_id: string; subject_id: string; data: Record<string, unknown> }[] {
  return (t.services.database.sqlite.prepare('SELECT actor_id, org_id, subject_id, data FROM audit_events WHERE action = ? ORDER BY seq').all(action) as {
    actor_id: string; org_id: string; subject_id: string; data: string;
  }[]).map((r) => ({ ...r, data: JSON.parse(r.data) as Record<string, unknown> }));
}

/** Insider risk: staff reading customer data without an approved, active grant. */
describe('no grant, no access', () => {
  it('refuses console reads with 403 access_grant_required and records the denial', async () => {
    const response = await read(support, '/members');
    expect(response.statusCode).toBe(403);
    expect(response.json()).toMatchObject({ code: 'access_grant_required', reason: 'no_active_grant' });
    const [denial] = events('staff.access.refused');
    expect(denial).toMatchObject({ actor_id: support.id, org_id: customer.orgId, data: { reason: 'no_active_grant', scope: 'read' } });
  });

  it('refuses staff routes to a session without TOTP (AAL1) and to customers', async () => {
    const { id } = await t.services.staff.createStaff({ email: 'fresh@cleverom.fi', name: 'Fresh', role: 'support', ndaSignedAt: '2026-01-01', password: 'correct horse battery staple' });
    expect(id).toBeTruthy();
    const login = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: 'fresh@cleverom.fi', password: 'correct horse battery staple' } });
    const aal1 = login.cookies.find((c) => c.name === 'cleverom_session')?.value ?? '';
    const staffRoute = await t.app.inject({ method: 'GET', url: '/v1/staff/access-requests', ...bearer(aal1) });
    expect(staffRoute.statusCode).toBe(403);
    expect(staffRoute.json().reason).toBe('aal2_required');
    const asCustomer = await t.app.inject({ method: 'GET', url: '/v1/staff/access-requests', ...bearer(customer.token) });
    expect(asCustomer.statusCode).toBe(403);
  });

  it('gives staff sessions a 15-minute idle limit', async () => {
    t.clock.advance(16 * 60_000);
    expect((await t.app.inject({ method: 'GET', url: '/v1/staff/access-requests', ...bearer(support.token) })).statusCode).toBe(401);
  });
});

describe('request, approve, access, expire', () => {
  it('lets a second person approve, then allows reads until the grant expires by the clock', async () => {
    const id = await requestAccess(t, support, { orgId: customer.orgId, durationMinutes: 60, ticket: 'SUP-1' });
    const approved = await approve(t, admin, id);
    expect(approved.statusCode).toBe(200);
    expect(approved.body).toMatchObject({ id, status: 'active' });
    expect(typeof approved.body.expiresAt).toBe('string');

    const members = await read(support, '/members');
    expect(members.statusCode).toBe(200);
    expect(members.json().members.map((m: { id: string }) => m.id)).toContain(customer.userId);
    expect((await read(support)).statusCode).toBe(200);
    const [access] = events('staff.access.read');
    expect(access).toMatchObject({ actor_id: support.id, org_id: customer.orgId, data: { grantId: id, scope: 'read' } });

    // Staff sessions idle out after 15 min: keep this one alive while the clock runs.
    for (let i = 0; i < 6; i += 1) {
      t.clock.advance(10 * 60_000);
      await t.app.inject({ method: 'GET', url: '/v1/staff/access-requests', ...bearer(support.token) });
    }
    const after = await read(support, '/members');
    expect(after.statusCode).toBe(403);
    expect(after.json().code).toBe('access_grant_required');

    expect(await t.services.staff.expireDue()).toBe(0); // already recorded when the listing ran
    expect(events('staff.access.expired')).toHaveLength(1);
  });

  it('reports active grants on /metrics', async () => {
    const gauge = async () => /^staff_active_grants (\d+)$/m.exec((await t.app.inject({ method: 'GET', url: '/metrics' })).body)?.[1];
    expect(await gauge()).toBe('0');
    const id = await requestAccess(t, support, { orgId: customer.orgId, durationMinutes: 30 });
    await approve(t, admin, id);
    expect(await gauge()).toBe('1');
    t.clock.advance(31 * 60_000);
    expect(await gauge()).toBe('0');
  });

  it('refuses self-approval and approval by a non-security-admin', async () => {
    const engineer = await createStaff(t, 'engineer');
    const own = await requestAccess(t, admin, { orgId: customer.orgId });
    const self = await approve(t, admin, own);
    expect(self.statusCode).toBe(403);
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    const byEngineer = await approve(t, engineer, id);
    expect(byEngineer.statusCode).toBe(403);
    expect((await read(support)).statusCode).toBe(403);
  });

  it('refuses deciding twice with 409', async () => {
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    expect((await approve(t, admin, id)).statusCode).toBe(200);
    const second = await createStaff(t, 'security_admin');
    expect((await approve(t, second, id)).statusCode).toBe(409);
    const deny = await t.app.inject({ method: 'POST', url: `/v1/staff/access-requests/${id}/deny`, ...bearer(second.token), payload: {} });
    expect(deny.statusCode).toBe(409);
  });

  it('a denied request grants nothing', async () => {
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    const deny = await t.app.inject({ method: 'POST', url: `/v1/staff/access-requests/${id}/deny`, ...bearer(admin.token), payload: { comment: 'no ticket' } });
    expect(deny.statusCode).toBe(200);
    expect(deny.json().status).toBe('denied');
    expect((await read(support)).statusCode).toBe(403);
  });

  it('pending requests lapse after 24 hours and can no longer be approved', async () => {
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    t.clock.advance(24 * 3600_000 + 1000);
    const fresh = await createStaff(t, 'security_admin');
    expect((await approve(t, fresh, id)).statusCode).toBe(409);
  });

  it('revocation takes effect on the next request', async () => {
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    await approve(t, admin, id);
    expect((await read(support)).statusCode).toBe(200);
    const revoke = await t.app.inject({ method: 'POST', url: `/v1/staff/access-requests/${id}/revoke`, ...bearer(support.token) });
    expect(revoke.statusCode).toBe(204);
    expect((await read(support)).statusCode).toBe(403);
    expect(events('staff.access.revoked')).toHaveLength(1);
  });

  it('caps the duration at the configured maximum (8 h) and defaults to 1 h', async () => {
    const tooLong = await t.app.inject({
      method: 'POST', url: '/v1/staff/access-requests', ...bearer(support.token),
      payload: { orgId: customer.orgId, scope: 'read', reason: 'Long investigation', durationMinutes: 481 },
    });
    expect(tooLong.statusCode).toBe(400);
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    const approved = await approve(t, admin, id);
    const expires = new Date(String(approved.body.expiresAt)).getTime();
    expect(expires - t.clock.now().getTime()).toBe(60 * 60_000);
  });

  it('overlapping grants do not cut each other short', async () => {
    const short = await requestAccess(t, support, { orgId: customer.orgId, durationMinutes: 10 });
    await approve(t, admin, short);
    const long = await requestAccess(t, support, { orgId: customer.orgId, durationMinutes: 120 });
    await approve(t, admin, long);
    await t.app.inject({ method: 'POST', url: `/v1/staff/access-requests/${short}/revoke`, ...bearer(admin.token) });
    t.clock.advance(11 * 60_000);
    const response = await read(support);
    expect(response.statusCode).toBe(200);
    expect(events('staff.access.read').at(-1)?.data.grantId).toBe(long);
  });
});

describe('scopes, NDA and isolation', () => {
  it('a read grant does not allow the write action; a write grant does', async () => {
    const member = await addMember(t, customer, 'member');
    const readId = await requestAccess(t, support, { orgId: customer.orgId, scope: 'read' });
    await approve(t, admin, readId);
    const url = `/v1/staff/orgs/${customer.orgId}/members/${member.userId}/revoke-sessions`;
    const refused = await t.app.inject({ method: 'POST', url, ...bearer(support.token) });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().reason).toBe('wrong_scope');

    const writeId = await requestAccess(t, support, { orgId: customer.orgId, scope: 'write' });
    await approve(t, admin, writeId);
    expect((await t.app.inject({ method: 'POST', url, ...bearer(support.token) })).statusCode).toBe(204);
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(member.token) })).statusCode).toBe(401);
    expect(events('staff.access.write')[0]).toMatchObject({ actor_id: support.id, subject_id: member.userId, data: { grantId: writeId } });
  });

  it('staff without an NDA on record cannot request access', async () => {
    const noNda = await createStaff(t, 'support', { nda: false });
    const response = await t.app.inject({
      method: 'POST', url: '/v1/staff/access-requests', ...bearer(noNda.token),
      payload: { orgId: customer.orgId, scope: 'read', reason: 'Trying without NDA' },
    });
    expect(response.statusCode).toBe(403);
    expect(response.json().code).toBe('forbidden');
  });

  it("a grant for one organization opens no other organization's data", async () => {
    const other = await signup(t.app);
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    await approve(t, admin, id);
    const response = await t.app.inject({ method: 'GET', url: `/v1/staff/orgs/${other.orgId}/members`, ...bearer(support.token) });
    expect(response.statusCode).toBe(403);
    expect(response.json().code).toBe('access_grant_required');
  });

  it("one staff member's grant does not open access for another", async () => {
    const colleague = await createStaff(t, 'engineer');
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    await approve(t, admin, id);
    expect((await read(colleague)).statusCode).toBe(403);
  });
});

describe('customer approval', () => {
  async function requireApproval(): Promise<void> {
    const patch = await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${customer.orgId}`, ...asUser(customer.token), payload: { settings: { requireCustomerApproval: true } } });
    expect(patch.statusCode).toBe(200);
  }

  it('keeps the grant inactive until an org admin approves, and starts its clock then', async () => {
    await requireApproval();
    const id = await requestAccess(t, support, { orgId: customer.orgId, durationMinutes: 30 });
    const staffApproved = await approve(t, admin, id);
    expect(staffApproved.body.status).toBe('awaiting_customer');
    expect((await read(support)).statusCode).toBe(403);

    const list = await t.app.inject({ method: 'GET', url: `/v1/orgs/${customer.orgId}/access-requests`, ...asUser(customer.token) });
    expect(list.json().requests[0]).toMatchObject({ id, status: 'awaiting_customer', reason: 'Customer ticket about login trouble' });
    for (const _ of [1, 2]) {
      t.clock.advance(10 * 60_000);
      await t.app.inject({ method: 'GET', url: '/v1/staff/access-requests', ...bearer(support.token) });
    }
    const ok = await t.app.inject({ method: 'POST', url: `/v1/orgs/${customer.orgId}/access-requests/${id}/approve`, ...asUser(customer.token) });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().status).toBe('active');
    expect(new Date(ok.json().expiresAt).getTime() - t.clock.now().getTime()).toBe(30 * 60_000);
    expect((await read(support)).statusCode).toBe(200);
  });

  it('lets the organization deny', async () => {
    await requireApproval();
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    await approve(t, admin, id);
    const denied = await t.app.inject({ method: 'POST', url: `/v1/orgs/${customer.orgId}/access-requests/${id}/deny`, ...asUser(customer.token) });
    expect(denied.statusCode).toBe(200);
    expect(denied.json().status).toBe('denied');
    expect((await read(support)).statusCode).toBe(403);
    expect(auditActions(t)).toContain('staff.access.customer_denied');
  });

  it("another organization's admin cannot approve (404)", async () => {
    await requireApproval();
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    const stranger = await signup(t.app);
    const response = await t.app.inject({ method: 'POST', url: `/v1/orgs/${stranger.orgId}/access-requests/${id}/approve`, ...asUser(stranger.token) });
    expect(response.statusCode).toBe(404);
  });
});

describe('restricted members', () => {
  it('hides a restricted member from staff reads', async () => {
    const member = await addMember(t, customer, 'member');
    t.services.database.sqlite.prepare("UPDATE users SET status = 'restricted' WHERE id = ?").run(member.userId);
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    await approve(t, admin, id);
    const list = await read(support, '/members');
    expect(list.json().members.map((m: { id: string }) => m.id)).not.toContain(member.userId);
    expect((await read(support, `/members/${member.userId}`)).statusCode).toBe(404);
  });
});

describe('authz decision API', () => {
  async function serviceToken(scopes: string[]): Promise<string> {
    return (await t.services.serviceTokens.create('billing-console', scopes, { type: 'system', id: null })).token;
  }
  const check = (token: string, body: Record<string, unknown>) =>
    t.app.inject({ method: 'POST', url: '/v1/authz/check', headers: { authorization: `Bearer ${token}` }, payload: body });

  it('answers allow with the grant and expiry, and deny with a reason — both logged', async () => {
    const token = await serviceToken(['authz:check']);
    const body = { staffId: support.id, orgId: customer.orgId, action: 'read', resource: 'invoices/42' };
    const denied = await check(token, body);
    expect(denied.statusCode).toBe(200);
    expect(denied.json()).toEqual({ allow: false, reason: 'no_active_grant' });

    const id = await requestAccess(t, support, { orgId: customer.orgId });
    await approve(t, admin, id);
    const allowed = await check(token, body);
    expect(allowed.json()).toMatchObject({ allow: true, grantId: id });
    expect(typeof allowed.json().expiresAt).toBe('string');
    expect((await check(token, { ...body, action: 'write' })).json()).toEqual({ allow: false, reason: 'wrong_scope' });

    expect(events('staff.authz.denied')).toHaveLength(2);
    expect(events('staff.authz.allowed')[0]).toMatchObject({ org_id: customer.orgId, subject_id: support.id, data: { grantId: id, resource: 'invoices/42' } });
  });

  it('needs a service token with authz:check', async () => {
    const wrong = await serviceToken(['plans:write']);
    expect((await check(wrong, { staffId: support.id, orgId: customer.orgId, action: 'read', resource: 'x' })).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'POST', url: '/v1/authz/check', payload: {} })).statusCode).toBe(401);
  });
});

describe('audit trail', () => {
  it('the customer sees staff accesses in the access log: who, when, what, grant, reason', async () => {
    const id = await requestAccess(t, support, { orgId: customer.orgId, ticket: 'SUP-7' });
    await approve(t, admin, id);
    await read(support, '/members');
    const log = await t.app.inject({ method: 'GET', url: `/v1/orgs/${customer.orgId}/access-log`, ...asUser(customer.token) });
    expect(log.statusCode).toBe(200);
    expect(log.json().entries).toEqual([
      expect.objectContaining({
        staffId: support.id,
        staffName: 'Sam Support',
        action: 'staff.access.read',
        allowed: true,
        grantId: id,
        reason: 'Customer ticket about login trouble',
        ticket: 'SUP-7',
        resource: `org:${customer.orgId}/members`,
      }),
    ]);
  });

  it('the access log needs access_transparency; org audit export needs audit_export', async () => {
    const free = await signup(t.app);
    const log = await t.app.inject({ method: 'GET', url: `/v1/orgs/${free.orgId}/access-log`, ...asUser(free.token) });
    expect(log.statusCode).toBe(403);
    expect(log.json()).toMatchObject({ code: 'plan_required', feature: 'access_transparency' });
    const exp = await t.app.inject({ method: 'GET', url: `/v1/orgs/${free.orgId}/audit`, ...asUser(free.token) });
    expect(exp.json()).toMatchObject({ code: 'plan_required', feature: 'audit_export', requiredPlan: 'pro' });
  });

  it('streams the organization audit as NDJSON with hashes that recompute', async () => {
    const response = await t.app.inject({ method: 'GET', url: `/v1/orgs/${customer.orgId}/audit?format=ndjson`, ...asUser(customer.token) });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('application/x-ndjson');
    const lines = response.body.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((e) => e.orgId === customer.orgId)).toBe(true);
    // The customer's own computation (docs/api.md): RFC 8785 and SHA-256, nothing of ours but the JCS library.
    const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
    for (const e of lines) {
      const core = {
        seq: e.seq, id: e.id, at: e.at, action: e.action, actorType: e.actorType,
        actorId: e.actorId, orgId: e.orgId, subjectId: e.subjectId,
        data: canonicalize(e.data), piiCommitment: e.piiCommitment,
      };
      expect(e.format).toBe('keyed');
      expect(sha256(sha256(canonicalize(core) ?? '') + String(e.prevHash))).toBe(e.hash);
    }
  });

  it('security admins search the audit log with filters and a cursor; others cannot', async () => {
    await read(support);
    await read(support);
    const first = await t.app.inject({ method: 'GET', url: `/v1/staff/audit?orgId=${customer.orgId}&action=staff.access.refused&limit=1`, ...bearer(admin.token) });
    expect(first.statusCode).toBe(200);
    expect(first.json().events).toHaveLength(1);
    const next = await t.app.inject({ method: 'GET', url: `/v1/staff/audit?orgId=${customer.orgId}&action=staff.access.refused&limit=1&cursor=${first.json().nextCursor}`, ...bearer(admin.token) });
    expect(next.json().events).toHaveLength(1);
    expect(next.json().events[0].seq).toBeGreaterThan(first.json().events[0].seq);
    expect((await t.app.inject({ method: 'GET', url: '/v1/staff/audit', ...bearer(support.token) })).statusCode).toBe(403);
    // Each search is itself recorded, with its filters and the number of results.
    expect(events('staff.audit.searched').at(-1)).toMatchObject({ actor_id: admin.id, data: { results: 1, filters: { orgId: customer.orgId } } });
  });

  /**
   * Insider risk (issue 23, item 12): the staff console's audit search ran
   * the same search as the API but recorded nothing, so a security admin
   * could read the audit log unseen by using the page.
   */
  it('records a search made on the staff console page like one made through the API', async () => {
    await read(support);
    const before = events('staff.audit.searched').length;
    const page = await t.app.inject({ method: 'GET', url: `/staff/audit?orgId=${customer.orgId}&action=staff.access.refused`, cookies: { cleverom_session: admin.token } });
    expect(page.statusCode, page.body).toBe(200);
    expect(page.body).toContain('staff.access.refused');
    const searches = events('staff.audit.searched');
    expect(searches).toHaveLength(before + 1);
    expect(searches.at(-1)).toMatchObject({ actor_id: admin.id, org_id: customer.orgId, data: { via: 'console', results: 1, filters: { orgId: customer.orgId, action: 'staff.access.refused' } } });
    // Opening the page without a query lists the log too: also a recorded search.
    expect((await t.app.inject({ method: 'GET', url: '/staff/audit', cookies: { cleverom_session: admin.token } })).statusCode).toBe(200);
    expect(events('staff.audit.searched')).toHaveLength(before + 2);
    // The console page is security_admin only, like the API.
    expect((await t.app.inject({ method: 'GET', url: '/staff/audit', cookies: { cleverom_session: support.token } })).statusCode).toBe(403);
    expect(events('staff.audit.searched')).toHaveLength(before + 2);
  });

  it('fails closed: when the audit event cannot be written, the read is refused', async () => {
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    await approve(t, admin, id);
    t.services.database.sqlite.exec("CREATE TRIGGER audit_block BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit down'); END;");
    const response = await read(support, '/members');
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toContain(customer.email);
  });

  it('the chain verifies after the whole lifecycle and breaks when a row is edited', async () => {
    const id = await requestAccess(t, support, { orgId: customer.orgId });
    await approve(t, admin, id);
    await read(support, '/members');
    expect(t.services.audit.verify().ok).toBe(true);
    const db = t.services.database.sqlite;
    db.exec('DROP TRIGGER audit_events_no_update');
    const seq = (db.prepare("SELECT seq FROM audit_events WHERE action = 'staff.access.read'").get() as { seq: number }).seq;
    db.prepare("UPDATE audit_events SET actor_id = 'nobody' WHERE seq = ?").run(seq);
    expect(t.services.audit.verify()).toMatchObject({ ok: false, brokenSeq: seq });
  });
});
