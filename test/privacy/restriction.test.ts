/**
 * Restriction of processing (GDPR Art. 18). A restricted account cannot log
 * in (`403 account_restricted`, told only after the password is right, so a
 * stranger learns nothing), its sessions are revoked, staff console reads
 * skip it, and its data is kept unchanged until the restriction is lifted.
 * Both directions are audited. Attacks covered: probing restriction with a
 * wrong password; a session surviving the restriction; an admin of another
 * organization restricting a member of B (404); an admin restricting an owner.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GOOD_PASSWORD, addMember, asUser, buildTestApp, login, mailToken, signup, type SignedUp, type TestApp } from '../helpers/app.js';
import { approve, bearer, createStaff, requestAccess } from '../helpers/staff.js';
import { enrolTotp, makeEnterprise } from '../helpers/totp.js';
import { auditEvents } from './helpers.js';

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

const restrict = (actor: SignedUp, orgId: string, userId: string, restricted: boolean) =>
  t.app.inject({ method: 'POST', url: `/v1/orgs/${orgId}/members/${userId}/restriction`, ...asUser(actor.token), payload: { restricted } });
const loginAs = (email: string, password: string) => t.app.inject({ method: 'POST', url: '/v1/login', payload: { email, password } });
const userRow = (userId: string): Record<string, unknown> | undefined =>
  t.services.database.sqlite.prepare('SELECT email, name, phone, role, password_hash, org_id FROM users WHERE id = ?').get(userId) as Record<string, unknown> | undefined;

describe('restriction by the organization (controller)', () => {
  it('blocks login with 403 account_restricted (wrong password still 401), revokes sessions, keeps the data, and lifts', async () => {
    const owner = await signup(t.app);
    const admin = await addMember(t, owner, 'admin');
    const member = await addMember(t, owner, 'member');
    const secondSession = await login(t.app, member.email);
    const before = userRow(member.userId);

    const response = await restrict(admin, owner.orgId, member.userId, true);
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toEqual({ userId: member.userId, restricted: true });

    for (const token of [member.token, secondSession]) {
      expect((await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(token) })).statusCode).toBe(401);
    }
    expect(t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM sessions WHERE user_id = ?').get(member.userId)).toEqual({ n: 0 });

    const refused = await loginAs(member.email, GOOD_PASSWORD);
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'account_restricted', status: 403 });
    expect(refused.cookies.find((c) => c.name === 'cleverom_session')).toBeUndefined();
    const wrong = await loginAs(member.email, 'not the password at all, no');
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().code).toBe('invalid_credentials');

    // Data kept unchanged, and the member list shows the state to the controller.
    expect(userRow(member.userId)).toEqual(before);
    const members = (await t.app.inject({ method: 'GET', url: `/v1/orgs/${owner.orgId}/members`, ...asUser(owner.token) })).json<{ members: { id: string; status: string }[] }>().members;
    expect(members.find((m) => m.id === member.userId)?.status).toBe('restricted');
    // A password reset does not change a restricted account either (and still answers 202).
    expect((await t.app.inject({ method: 'POST', url: '/v1/password-reset', payload: { email: member.email } })).statusCode).toBe(202);
    expect(t.outbox().filter((m) => m.to === member.email && m.kind === 'password_reset')).toHaveLength(0);

    const lifted = await restrict(admin, owner.orgId, member.userId, false);
    expect(lifted.json()).toEqual({ userId: member.userId, restricted: false });
    expect((await loginAs(member.email, GOOD_PASSWORD)).statusCode).toBe(200);

    const applied = auditEvents(t, 'privacy.restricted');
    const liftedEvents = auditEvents(t, 'privacy.restriction_lifted');
    expect(applied).toEqual([expect.objectContaining({ actor_id: admin.userId, subject_id: member.userId, org_id: owner.orgId, data: { via: 'org_admin', changed: true, sessionsRevoked: 2 } })]);
    expect(liftedEvents).toEqual([expect.objectContaining({ actor_id: admin.userId, subject_id: member.userId, data: { via: 'org_admin', changed: true, sessionsRevoked: 0 } })]);
    expect(auditEvents(t, 'auth.login.refused')).toEqual([expect.objectContaining({ subject_id: member.userId, data: { reason: 'account_restricted' } })]);
  });

  it('stops a pending MFA login at the password step', async () => {
    const owner = await signup(t.app);
    await makeEnterprise(t, owner.orgId);
    const member = await addMember(t, owner, 'member');
    await enrolTotp(t, member);
    expect((await loginAs(member.email, GOOD_PASSWORD)).json().code).toBe('mfa_required');
    await restrict(owner, owner.orgId, member.userId, true);
    expect(t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM mfa_challenges WHERE user_id = ?').get(member.userId)).toEqual({ n: 0 });
    expect((await loginAs(member.email, GOOD_PASSWORD)).json().code).toBe('account_restricted');
  });

  it('hides the restricted member from staff console reads, and shows them again once lifted', async () => {
    const owner = await signup(t.app);
    await makeEnterprise(t, owner.orgId);
    const member = await addMember(t, owner, 'member');
    const support = await createStaff(t, 'support');
    const securityAdmin = await createStaff(t, 'security_admin');
    expect((await approve(t, securityAdmin, await requestAccess(t, support, { orgId: owner.orgId }))).statusCode).toBe(200);
    const list = async (): Promise<string[]> =>
      (await t.app.inject({ method: 'GET', url: `/v1/staff/orgs/${owner.orgId}/members`, ...bearer(support.token) })).json<{ members: { id: string }[] }>().members.map((m) => m.id);
    expect(await list()).toContain(member.userId);
    await restrict(owner, owner.orgId, member.userId, true);
    expect(await list()).not.toContain(member.userId);
    expect((await t.app.inject({ method: 'GET', url: `/v1/staff/orgs/${owner.orgId}/members/${member.userId}`, ...bearer(support.token) })).statusCode).toBe(404);
    await restrict(owner, owner.orgId, member.userId, false);
    expect(await list()).toContain(member.userId);
  });

  it('lets only an owner restrict an owner, refuses members, and is tenant-isolated (404, nothing recorded)', async () => {
    const ownerA = await signup(t.app, { orgName: 'A' });
    const adminA = await addMember(t, ownerA, 'admin');
    const memberA = await addMember(t, ownerA, 'member');
    const ownerB = await signup(t.app, { orgName: 'B' });
    const memberB = await addMember(t, ownerB, 'member');

    expect((await restrict(adminA, ownerA.orgId, ownerA.userId, true)).statusCode).toBe(403);
    expect((await restrict(memberA, ownerA.orgId, adminA.userId, true)).statusCode).toBe(403);
    for (const [orgId, userId] of [[ownerB.orgId, memberB.userId], [ownerA.orgId, memberB.userId]] as const) {
      const response = await restrict(adminA, orgId, userId, true);
      expect(response.statusCode).toBe(404);
      expect(response.json().code).toBe('not_found');
    }
    expect(t.services.database.sqlite.prepare("SELECT COUNT(*) AS n FROM users WHERE status = 'restricted'").get()).toEqual({ n: 0 });
    expect(auditEvents(t, 'privacy.restricted')).toHaveLength(0);
    expect((await loginAs(memberB.email, GOOD_PASSWORD)).statusCode).toBe(200);
  });
});

describe('self-service restriction (POST /v1/me/restriction)', () => {
  it('restricts the caller, ends their sessions, and mails a single-use token that lifts it', async () => {
    const owner = await signup(t.app);
    const member = await addMember(t, owner, 'member');
    const response = await t.app.inject({ method: 'POST', url: '/v1/me/restriction', ...asUser(member.token), payload: { restricted: true } });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toEqual({ userId: member.userId, restricted: true });
    expect(response.cookies.find((c) => c.name === 'cleverom_session')?.value).toBe('');
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(member.token) })).statusCode).toBe(401);
    expect((await loginAs(member.email, GOOD_PASSWORD)).json().code).toBe('account_restricted');
    expect(auditEvents(t, 'privacy.restricted')).toEqual([expect.objectContaining({ actor_id: member.userId, subject_id: member.userId, data: expect.objectContaining({ via: 'self' }) })]);

    const token = mailToken(t, member.email, 'restriction_lift');
    expect((await t.app.inject({ method: 'POST', url: '/v1/restriction/lift', payload: { token: 'x'.repeat(43) } })).statusCode).toBe(400);
    expect((await t.app.inject({ method: 'POST', url: '/v1/restriction/lift', payload: { token } })).statusCode).toBe(204);
    expect((await t.app.inject({ method: 'POST', url: '/v1/restriction/lift', payload: { token } })).statusCode).toBe(400);
    expect((await loginAs(member.email, GOOD_PASSWORD)).statusCode).toBe(200);
    expect(auditEvents(t, 'privacy.restriction_lifted')).toEqual([
      expect.objectContaining({ actor_id: member.userId, subject_id: member.userId, data: { via: 'self', method: 'token' } }),
    ]);
  });

  it('voids the lift token when the controller lifts first, and the body must say restricted: true', async () => {
    const owner = await signup(t.app);
    const member = await addMember(t, owner, 'member');
    expect((await t.app.inject({ method: 'POST', url: '/v1/me/restriction', ...asUser(member.token), payload: { restricted: false } })).statusCode).toBe(400);
    await t.app.inject({ method: 'POST', url: '/v1/me/restriction', ...asUser(member.token), payload: { restricted: true } });
    const token = mailToken(t, member.email, 'restriction_lift');
    expect((await restrict(owner, owner.orgId, member.userId, false)).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'POST', url: '/v1/restriction/lift', payload: { token } })).statusCode).toBe(400);
  });
});
