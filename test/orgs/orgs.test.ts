import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  GOOD_PASSWORD,
  addMember,
  asUser,
  auditActions,
  buildTestApp,
  inviteToken,
  login,
  sessionCookie,
  signup,
  uniqueEmail,
  type SignedUp,
  type TestApp,
} from '../helpers/app.js';

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

const DAY = 24 * 60 * 60 * 1000;

interface AuditRow {
  action: string;
  actorType: string;
  actorId: string | null;
  orgId: string | null;
  subjectId: string | null;
  data: Record<string, unknown>;
}

/** Audit events with `action`, oldest first. */
function auditEvents(action: string): AuditRow[] {
  const rows = t.services.database.sqlite
    .prepare('SELECT action, actor_type, actor_id, org_id, subject_id, data FROM audit_events WHERE action = ? ORDER BY seq')
    .all(action) as { action: string; actor_type: string; actor_id: string | null; org_id: string | null; subject_id: string | null; data: string }[];
  return rows.map((r) => ({
    action: r.action,
    actorType: r.actor_type,
    actorId: r.actor_id,
    orgId: r.org_id,
    subjectId: r.subject_id,
    data: JSON.parse(r.data) as Record<string, unknown>,
  }));
}

const getOrg = (who: SignedUp, orgId = who.orgId) => t.app.inject({ method: 'GET', url: `/v1/orgs/${orgId}`, ...asUser(who.token) });
const patchOrg = (who: SignedUp, payload: object, orgId = who.orgId) =>
  t.app.inject({ method: 'PATCH', url: `/v1/orgs/${orgId}`, ...asUser(who.token), payload });
const listMembers = (who: SignedUp) => t.app.inject({ method: 'GET', url: `/v1/orgs/${who.orgId}/members`, ...asUser(who.token) });
const setRole = (who: SignedUp, userId: string, role: string) =>
  t.app.inject({ method: 'PATCH', url: `/v1/orgs/${who.orgId}/members/${userId}`, ...asUser(who.token), payload: { role } });
const removeMember = (who: SignedUp, userId: string) =>
  t.app.inject({ method: 'DELETE', url: `/v1/orgs/${who.orgId}/members/${userId}`, ...asUser(who.token) });
const invite = (who: SignedUp, email: string, role: string) =>
  t.app.inject({ method: 'POST', url: `/v1/orgs/${who.orgId}/invitations`, ...asUser(who.token), payload: { email, role } });
const accept = (token: string, overrides: Partial<{ name: string; password: string; ageConfirmed: boolean }> = {}) =>
  t.app.inject({
    method: 'POST',
    url: '/v1/invitations/accept',
    payload: { token, name: 'Ida Invited', password: GOOD_PASSWORD, ageConfirmed: true, ...overrides },
  });
const me = (token: string) => t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(token) });

async function roleOf(owner: SignedUp, userId: string): Promise<string | undefined> {
  const members = (await listMembers(owner)).json<{ members: { id: string; role: string }[] }>().members;
  return members.find((m) => m.id === userId)?.role;
}

/** Put the organization on `plan` the way billing does (the service behind the internal route). */
async function setPlan(orgId: string, plan: 'free' | 'pro' | 'enterprise'): Promise<void> {
  await t.services.orgs.setPlan(orgId, plan, { type: 'system', id: null });
}

describe('GET /v1/orgs/:orgId', () => {
  it('shows a plain member their organization with id, name, slug, plan, features and settings', async () => {
    const owner = await signup(t.app, { orgName: 'Acme Oy' });
    const member = await addMember(t, owner, 'member');
    const response = await getOrg(member);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      id: owner.orgId,
      name: 'Acme Oy',
      slug: 'acme-oy',
      plan: 'free',
      features: [],
      settings: { requireMfa: false, enforceSso: false, requireCustomerApproval: false, passwordMinLength: 15 },
    });
  });

  it('lists the features of the plan', async () => {
    const owner = await signup(t.app);
    await setPlan(owner.orgId, 'enterprise');
    const body = (await getOrg(owner)).json();
    expect(body.plan).toBe('enterprise');
    expect(body.features).toEqual(expect.arrayContaining(['mfa_totp', 'sso', 'access_approval', 'access_transparency', 'audit_export']));
  });

  it('gives a second organization with the same name its own slug', async () => {
    const first = await signup(t.app, { orgName: 'Same Name' });
    const second = await signup(t.app, { orgName: 'Same Name' });
    const [a, b] = [(await getOrg(first)).json().slug, (await getOrg(second)).json().slug];
    expect(a).toBe('same-name');
    expect(b).toMatch(/^same-name-[a-z0-9-]+$/);
    expect(b).not.toBe(a);
  });

  it('refuses an anonymous caller with 401 unauthenticated', async () => {
    const owner = await signup(t.app);
    const response = await t.app.inject({ method: 'GET', url: `/v1/orgs/${owner.orgId}` });
    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe('unauthenticated');
  });
});

describe('PATCH /v1/orgs/:orgId', () => {
  it('refuses a plain member with 403 forbidden and keeps the name', async () => {
    const owner = await signup(t.app, { orgName: 'Acme Oy' });
    const member = await addMember(t, owner, 'member');
    const response = await patchOrg(member, { name: 'Hijacked' });
    expect(response.statusCode).toBe(403);
    expect(response.json().code).toBe('forbidden');
    expect((await getOrg(owner)).json().name).toBe('Acme Oy');
    expect(auditActions(t)).not.toContain('org.updated');
  });

  it.each([['admin' as const], ['owner' as const]])('lets an %s rename the organization and records org.updated', async (role) => {
    const owner = await signup(t.app, { orgName: 'Acme Oy' });
    const actor = role === 'owner' ? owner : await addMember(t, owner, 'admin');
    const response = await patchOrg(actor, { name: 'Acme Group' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ id: owner.orgId, name: 'Acme Group', plan: 'free' });
    expect((await getOrg(owner)).json().name).toBe('Acme Group');
    const events = auditEvents('org.updated');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ actorType: 'user', actorId: actor.userId, orgId: owner.orgId, subjectId: owner.orgId, data: { nameChanged: true } });
  });

  it('accepts a bearer session token without an Origin, and refuses a cookie request without one (csrf_failed)', async () => {
    const owner = await signup(t.app);
    const bearer = await t.app.inject({
      method: 'PATCH',
      url: `/v1/orgs/${owner.orgId}`,
      headers: { authorization: `Bearer ${owner.token}` },
      payload: { name: 'Via Bearer' },
    });
    expect(bearer.statusCode).toBe(200);
    const noOrigin = await t.app.inject({
      method: 'PATCH',
      url: `/v1/orgs/${owner.orgId}`,
      cookies: { cleverom_session: owner.token },
      payload: { name: 'Via Cookie' },
    });
    expect(noOrigin.statusCode).toBe(403);
    expect(noOrigin.json().code).toBe('csrf_failed');
    expect((await getOrg(owner)).json().name).toBe('Via Bearer');
  });

  it.each([
    ['an empty body', {}],
    ['an unknown field', { plan: 'enterprise' }],
    ['an unknown setting', { settings: { allowEverything: true } }],
    ['a blank name', { name: '   ' }],
    ['a non-boolean setting', { settings: { requireMfa: 'yes' } }],
  ])('refuses %s with 400 validation_failed', async (_label, payload) => {
    const owner = await signup(t.app);
    const response = await patchOrg(owner, payload);
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('validation_failed');
    expect((await getOrg(owner)).json().plan).toBe('free');
  });

  it.each([
    ['requireMfa', 'mfa_totp'],
    ['enforceSso', 'sso'],
    ['requireCustomerApproval', 'access_approval'],
  ])('refuses turning on %s on the free plan with 403 plan_required (feature %s, requiredPlan enterprise)', async (setting, feature) => {
    const owner = await signup(t.app);
    const response = await patchOrg(owner, { settings: { [setting]: true } });
    expect(response.statusCode).toBe(403);
    expect(response.json()).toMatchObject({ code: 'plan_required', feature, requiredPlan: 'enterprise' });
    expect((await getOrg(owner)).json().settings[setting]).toBe(false);
    expect(auditActions(t)).not.toContain('org.updated');
  });

  it('refuses requireMfa on the pro plan too (only enterprise has mfa_totp)', async () => {
    const owner = await signup(t.app);
    await setPlan(owner.orgId, 'pro');
    const response = await patchOrg(owner, { settings: { requireMfa: true } });
    expect(response.statusCode).toBe(403);
    expect(response.json()).toMatchObject({ code: 'plan_required', feature: 'mfa_totp', requiredPlan: 'enterprise' });
  });

  it('does not rename when a setting in the same request is refused', async () => {
    const owner = await signup(t.app, { orgName: 'Acme Oy' });
    const response = await patchOrg(owner, { name: 'Renamed', settings: { requireMfa: true } });
    expect(response.statusCode).toBe(403);
    expect((await getOrg(owner)).json().name).toBe('Acme Oy');
  });

  it('turns on requireMfa and requireCustomerApproval on enterprise and records the change', async () => {
    const owner = await signup(t.app);
    await setPlan(owner.orgId, 'enterprise');
    const response = await patchOrg(owner, { settings: { requireMfa: true, requireCustomerApproval: true } });
    expect(response.statusCode).toBe(200);
    expect(response.json().settings).toEqual({ requireMfa: true, enforceSso: false, requireCustomerApproval: true, passwordMinLength: 15 });
    expect((await t.services.orgs.get(owner.orgId)).settings).toEqual({ requireMfa: true, enforceSso: false, requireCustomerApproval: true, passwordMinLength: 15 });
    const [event] = auditEvents('org.updated');
    expect(event?.data).toEqual({ settings: { requireMfa: true, requireCustomerApproval: true } });
    // It takes effect at once: a password-only session may now only enrol a second factor.
    const after = await getOrg(owner);
    expect(after.statusCode).toBe(403);
    expect(after.json()).toMatchObject({ code: 'forbidden', reason: 'mfa_enrolment_required' });
  });

  it('keeps the other settings when one is changed', async () => {
    const owner = await signup(t.app);
    await setPlan(owner.orgId, 'enterprise');
    expect((await patchOrg(owner, { settings: { requireCustomerApproval: true } })).statusCode).toBe(200);
    const response = await patchOrg(owner, { name: 'Renamed', settings: { requireMfa: true } });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ name: 'Renamed', settings: { requireMfa: true, enforceSso: false, requireCustomerApproval: true } });
  });

  it('refuses enforceSso on enterprise with 400 validation_failed while no SSO connection exists', async () => {
    const owner = await signup(t.app);
    await setPlan(owner.orgId, 'enterprise');
    const response = await patchOrg(owner, { settings: { enforceSso: true } });
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('validation_failed');
    expect(response.json().errors).toEqual([expect.objectContaining({ field: 'settings.enforceSso' })]);
    expect((await getOrg(owner)).json().settings.enforceSso).toBe(false);
  });

  it('lets a setting be turned off on a plan without its feature (a downgrade never locks a setting on)', async () => {
    const owner = await signup(t.app);
    await setPlan(owner.orgId, 'enterprise');
    expect((await patchOrg(owner, { settings: { requireMfa: true, requireCustomerApproval: true } })).statusCode).toBe(200);
    await setPlan(owner.orgId, 'free');
    const response = await patchOrg(owner, { settings: { requireMfa: false, requireCustomerApproval: false } });
    expect(response.statusCode).toBe(200);
    expect(response.json().settings).toEqual({ requireMfa: false, enforceSso: false, requireCustomerApproval: false, passwordMinLength: 15 });
  });

  it('accepts turning a setting off on the free plan when it is already off', async () => {
    const owner = await signup(t.app);
    const response = await patchOrg(owner, { settings: { requireMfa: false, enforceSso: false, requireCustomerApproval: false } });
    expect(response.statusCode).toBe(200);
    expect(response.json().settings).toEqual({ requireMfa: false, enforceSso: false, requireCustomerApproval: false, passwordMinLength: 15 });
  });
});

describe('GET /v1/orgs/:orgId/members', () => {
  it('lists every member with role and email to a plain member, without password hashes', async () => {
    const owner = await signup(t.app, { name: 'Ann Owner' });
    const admin = await addMember(t, owner, 'admin');
    const member = await addMember(t, owner, 'member');
    const response = await listMembers(member);
    expect(response.statusCode).toBe(200);
    const members = response.json<{ members: Record<string, unknown>[] }>().members;
    expect(members).toHaveLength(3);
    expect(members).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: owner.userId, email: owner.email, name: 'Ann Owner', role: 'owner', status: 'active' }),
        expect.objectContaining({ id: admin.userId, email: admin.email, role: 'admin' }),
        expect.objectContaining({ id: member.userId, email: member.email, role: 'member' }),
      ]),
    );
    expect(response.body).not.toMatch(/argon2|passwordHash/i);
  });
});

describe('PATCH /v1/orgs/:orgId/members/:userId', () => {
  it('lets an admin promote a member to admin and records member.role_changed', async () => {
    const owner = await signup(t.app);
    const admin = await addMember(t, owner, 'admin');
    const member = await addMember(t, owner, 'member');
    const response = await setRole(admin, member.userId, 'admin');
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ id: member.userId, role: 'admin', email: member.email });
    expect(await roleOf(owner, member.userId)).toBe('admin');
    // The promoted member now passes admin gates.
    expect((await patchOrg(member, { name: 'Renamed By New Admin' })).statusCode).toBe(200);
    expect(auditEvents('member.role_changed')).toEqual([
      expect.objectContaining({ actorId: admin.userId, orgId: owner.orgId, subjectId: member.userId, data: { from: 'member', to: 'admin' } }),
    ]);
  });

  it('refuses a plain member with 403 forbidden', async () => {
    const owner = await signup(t.app);
    const member = await addMember(t, owner, 'member');
    const other = await addMember(t, owner, 'member');
    const response = await setRole(member, other.userId, 'admin');
    expect(response.statusCode).toBe(403);
    expect(await roleOf(owner, other.userId)).toBe('member');
  });

  it('refuses an admin making someone owner (403) and leaves the role', async () => {
    const owner = await signup(t.app);
    const admin = await addMember(t, owner, 'admin');
    const member = await addMember(t, owner, 'member');
    for (const target of [member, admin]) {
      const response = await setRole(admin, target.userId, 'owner');
      expect(response.statusCode).toBe(403);
      expect(response.json().code).toBe('forbidden');
    }
    expect(await roleOf(owner, member.userId)).toBe('member');
    expect(await roleOf(owner, admin.userId)).toBe('admin');
    expect(auditActions(t)).not.toContain('member.role_changed');
  });

  it('refuses an admin changing an owner (403) even when other owners exist', async () => {
    const owner = await signup(t.app);
    await addMember(t, owner, 'owner');
    const admin = await addMember(t, owner, 'admin');
    const response = await setRole(admin, owner.userId, 'member');
    expect(response.statusCode).toBe(403);
    expect(response.json().code).toBe('forbidden');
    expect(await roleOf(owner, owner.userId)).toBe('owner');
  });

  it('refuses demoting the last owner with 409 conflict', async () => {
    const owner = await signup(t.app);
    const response = await setRole(owner, owner.userId, 'admin');
    expect(response.statusCode).toBe(409);
    expect(response.json().code).toBe('conflict');
    expect(await roleOf(owner, owner.userId)).toBe('owner');
    expect(auditActions(t)).not.toContain('member.role_changed');
  });

  it('lets an owner promote another owner and then step down; the new owner is then the last one', async () => {
    const owner = await signup(t.app);
    const successor = await addMember(t, owner, 'admin');
    expect((await setRole(owner, successor.userId, 'owner')).statusCode).toBe(200);
    const stepDown = await setRole(owner, owner.userId, 'member');
    expect(stepDown.statusCode).toBe(200);
    expect(stepDown.json().role).toBe('member');
    expect(await roleOf(successor, owner.userId)).toBe('member');
    // The former owner lost their admin rights at once (same session).
    expect((await patchOrg(owner, { name: 'Not Any More' })).statusCode).toBe(403);
    const last = await setRole(successor, successor.userId, 'admin');
    expect(last.statusCode).toBe(409);
    expect(auditEvents('member.role_changed').map((e) => e.data)).toEqual([
      { from: 'admin', to: 'owner' },
      { from: 'owner', to: 'member' },
    ]);
  });

  it('answers 404 not_found for an unknown user id', async () => {
    const owner = await signup(t.app);
    const response = await setRole(owner, 'no-such-user', 'admin');
    expect(response.statusCode).toBe(404);
    expect(response.json().code).toBe('not_found');
  });

  it('refuses an unknown role with 400 validation_failed', async () => {
    const owner = await signup(t.app);
    const member = await addMember(t, owner, 'member');
    const response = await setRole(owner, member.userId, 'superuser');
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('validation_failed');
    expect(await roleOf(owner, member.userId)).toBe('member');
  });
});

describe('DELETE /v1/orgs/:orgId/members/:userId', () => {
  it('removes a member: 204, their sessions stop working, they cannot log in, member.removed is recorded', async () => {
    const owner = await signup(t.app);
    const admin = await addMember(t, owner, 'admin');
    const member = await addMember(t, owner, 'member');
    const second = await login(t.app, member.email);
    expect((await me(member.token)).statusCode).toBe(200);

    const response = await removeMember(admin, member.userId);
    expect(response.statusCode).toBe(204);
    expect(response.body).toBe('');
    for (const token of [member.token, second]) {
      const after = await me(token);
      expect(after.statusCode).toBe(401);
      expect(after.json().code).toBe('unauthenticated');
    }
    const members = (await listMembers(owner)).json<{ members: { id: string }[] }>().members.map((m) => m.id);
    expect(members).not.toContain(member.userId);
    const relogin = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: member.email, password: GOOD_PASSWORD } });
    expect(relogin.statusCode).toBe(401);
    expect(auditEvents('member.removed')).toEqual([
      expect.objectContaining({ actorId: admin.userId, orgId: owner.orgId, subjectId: member.userId, data: { via: 'org_admin', role: 'member', organizationDeleted: false } }),
    ]);
  });

  it('refuses removing the last owner with 409 conflict', async () => {
    const owner = await signup(t.app);
    const response = await removeMember(owner, owner.userId);
    expect(response.statusCode).toBe(409);
    expect(response.json().code).toBe('conflict');
    expect((await me(owner.token)).statusCode).toBe(200);
    expect(auditActions(t)).not.toContain('member.removed');
  });

  it('refuses an admin removing an owner with 403 forbidden', async () => {
    const owner = await signup(t.app);
    const coOwner = await addMember(t, owner, 'owner');
    const admin = await addMember(t, owner, 'admin');
    const response = await removeMember(admin, coOwner.userId);
    expect(response.statusCode).toBe(403);
    expect(response.json().code).toBe('forbidden');
    expect((await me(coOwner.token)).statusCode).toBe(200);
  });

  it('refuses a plain member with 403 forbidden', async () => {
    const owner = await signup(t.app);
    const member = await addMember(t, owner, 'member');
    const other = await addMember(t, owner, 'member');
    expect((await removeMember(member, other.userId)).statusCode).toBe(403);
    expect((await me(other.token)).statusCode).toBe(200);
  });

  it('lets an owner remove a co-owner', async () => {
    const owner = await signup(t.app);
    const coOwner = await addMember(t, owner, 'owner');
    expect((await removeMember(owner, coOwner.userId)).statusCode).toBe(204);
    expect((await me(coOwner.token)).statusCode).toBe(401);
  });

  it('answers 404 not_found for an unknown or already removed member', async () => {
    const owner = await signup(t.app);
    const member = await addMember(t, owner, 'member');
    expect((await removeMember(owner, member.userId)).statusCode).toBe(204);
    const again = await removeMember(owner, member.userId);
    expect(again.statusCode).toBe(404);
    expect(again.json().code).toBe('not_found');
  });
});

describe('invitations', () => {
  it('creates an invitation (201 {invitationId}), mails a link with a single token and records invitation.created', async () => {
    const owner = await signup(t.app, { orgName: 'Acme Oy' });
    const email = uniqueEmail('invitee');
    const response = await invite(owner, email, 'admin');
    expect(response.statusCode).toBe(201);
    const { invitationId } = response.json<{ invitationId: string }>();
    expect(typeof invitationId).toBe('string');
    expect(invitationId.length).toBeGreaterThan(0);

    const mails = t.outbox().filter((m) => m.kind === 'invitation');
    expect(mails).toHaveLength(1);
    expect(mails[0]).toMatchObject({ to: email });
    expect(mails[0]?.subject).toContain('Acme Oy');
    const token = inviteToken(t, email);
    expect(token.length).toBeGreaterThanOrEqual(43);
    expect(mails[0]?.text).toContain(`/invitations/accept?token=${token}`);

    // Only a hash of the token is stored.
    const stored = JSON.stringify(t.services.database.sqlite.prepare('SELECT * FROM invitations').all());
    expect(stored).not.toContain(token);

    expect(auditEvents('invitation.created')).toEqual([
      expect.objectContaining({ actorId: owner.userId, orgId: owner.orgId, subjectId: invitationId, data: { role: 'admin' } }),
    ]);
    // The email is personal data: kept out of the hashed audit rows.
    expect(JSON.stringify(t.services.database.sqlite.prepare('SELECT * FROM audit_events').all())).not.toContain(email);
  });

  it('normalises the invited email (case, spaces)', async () => {
    const owner = await signup(t.app);
    const email = uniqueEmail('mixed');
    expect((await invite(owner, email.toUpperCase(), 'member')).statusCode).toBe(201);
    const accepted = await accept(inviteToken(t, email));
    expect(accepted.statusCode).toBe(201);
    expect(accepted.json().user.email).toBe(email);
  });

  it('accepting creates the account in the org with the invited role and a working session (201)', async () => {
    const owner = await signup(t.app);
    const email = uniqueEmail('invitee');
    await invite(owner, email, 'admin');
    const response = await accept(inviteToken(t, email), { name: 'Ida Invited' });
    expect(response.statusCode).toBe(201);
    const body = response.json();
    expect(body.user).toMatchObject({ email, name: 'Ida Invited', orgId: owner.orgId, role: 'admin' });
    expect(body.user.passwordHash).toBeUndefined();
    expect(body.organization).toMatchObject({ id: owner.orgId });
    expect(body.session).toMatchObject({ aal: 1, authMethod: 'invitation' });

    const token = sessionCookie(response);
    const meResponse = await me(token);
    expect(meResponse.statusCode).toBe(200);
    expect(meResponse.json().user).toMatchObject({ id: body.user.id, role: 'admin', orgId: owner.orgId });
    expect(await roleOf(owner, body.user.id)).toBe('admin');
    // The role is real: an admin can rename the org.
    const invitee: SignedUp = { token, userId: body.user.id, orgId: owner.orgId, email, password: GOOD_PASSWORD };
    expect((await patchOrg(invitee, { name: 'Renamed by invitee' })).statusCode).toBe(200);
    // And the chosen password works for logging in.
    await login(t.app, email, GOOD_PASSWORD);

    expect(auditEvents('invitation.accepted')).toEqual([
      expect.objectContaining({ actorType: 'user', actorId: body.user.id, orgId: owner.orgId, subjectId: body.user.id }),
    ]);
  });

  it('refuses a reused token with 400 validation_failed', async () => {
    const owner = await signup(t.app);
    const email = uniqueEmail('invitee');
    await invite(owner, email, 'member');
    const token = inviteToken(t, email);
    expect((await accept(token)).statusCode).toBe(201);
    const reused = await accept(token, { name: 'Second Try' });
    expect(reused.statusCode).toBe(400);
    expect(reused.json().code).toBe('validation_failed');
    expect(reused.json().errors).toEqual([expect.objectContaining({ field: 'token' })]);
    expect(reused.cookies.find((c) => c.name === 'cleverom_session')).toBeUndefined();
    expect(auditEvents('invitation.accepted')).toHaveLength(1);
  });

  it('refuses an unknown token with 400 validation_failed', async () => {
    const response = await accept('A'.repeat(43));
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('validation_failed');
  });

  it('is valid for 7 days and refused after (400)', async () => {
    const owner = await signup(t.app);
    const early = uniqueEmail('early');
    const late = uniqueEmail('late');
    await invite(owner, early, 'member');
    await invite(owner, late, 'member');
    t.clock.advance(7 * DAY - 60_000);
    expect((await accept(inviteToken(t, early))).statusCode).toBe(201);
    t.clock.advance(60_000);
    const expired = await accept(inviteToken(t, late));
    expect(expired.statusCode).toBe(400);
    expect(expired.json().code).toBe('validation_failed');
    const count = t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM users WHERE email = ?').get(late) as { n: number };
    expect(count.n).toBe(0);
  });

  it('refuses ageConfirmed false with 400 age_restricted, and the invitation stays usable', async () => {
    const owner = await signup(t.app);
    const email = uniqueEmail('young');
    await invite(owner, email, 'member');
    const token = inviteToken(t, email);
    const refused = await accept(token, { ageConfirmed: false });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().code).toBe('age_restricted');
    expect(auditActions(t)).not.toContain('invitation.accepted');
    expect((await accept(token)).statusCode).toBe(201);
  });

  it.each([
    ['too short', 'short pass'],
    ['a common password', 'passwordpassword'],
  ])('refuses a weak password (%s) with 400 validation_failed, and the invitation stays usable', async (_label, password) => {
    const owner = await signup(t.app);
    const email = uniqueEmail('weak');
    await invite(owner, email, 'member');
    const token = inviteToken(t, email);
    const refused = await accept(token, { password });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().code).toBe('validation_failed');
    expect(refused.json().errors).toEqual([expect.objectContaining({ field: 'password' })]);
    expect((await accept(token)).statusCode).toBe(201);
  });

  /** Regression: acceptance checked the password against the name only, not the invited email (sign-up checks both). */
  it('refuses the invited email (or its local part) as password, like sign-up does', async () => {
    const owner = await signup(t.app);
    const local = `longlocalpart${Date.now()}`;
    const email = `${local}@example.com`;
    await invite(owner, email, 'member');
    const token = inviteToken(t, email);
    for (const password of [local, email]) {
      const refused = await accept(token, { password });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().errors).toEqual([expect.objectContaining({ field: 'password', message: expect.stringMatching(/email/) })]);
    }
    expect((await accept(token)).statusCode).toBe(201);
  });

  it('accepts an email that has an account elsewhere at invite time (no enumeration), refuses acceptance with 409 without using the invitation up', async () => {
    const ownerA = await signup(t.app, { orgName: 'Org A' });
    const ownerB = await signup(t.app, { orgName: 'Org B' });
    const elsewhere = await addMember(t, ownerB, 'member');

    const invited = await invite(ownerA, elsewhere.email, 'admin');
    expect(invited.statusCode).toBe(201);
    const token = inviteToken(t, elsewhere.email);

    const taken = await accept(token);
    expect(taken.statusCode).toBe(409);
    expect(taken.json().code).toBe('conflict');
    expect(taken.cookies.find((c) => c.name === 'cleverom_session')).toBeUndefined();
    // The existing account was not moved, re-roled or re-passworded.
    expect((await me(elsewhere.token)).json().user).toMatchObject({ orgId: ownerB.orgId, role: 'member' });
    expect(auditEvents('invitation.accepted').filter((e) => e.orgId === ownerA.orgId)).toEqual([]);

    // The refused acceptance did not use the invitation up.
    const pending = t.services.database.sqlite.prepare('SELECT accepted_at FROM invitations WHERE org_id = ?').get(ownerA.orgId) as { accepted_at: number | null };
    expect(pending.accepted_at).toBeNull();
    // Removing that account erases everything about the person, invitations to their address included.
    expect((await removeMember(ownerB, elsewhere.userId)).statusCode).toBe(204);
    expect((await accept(token)).statusCode).toBe(400);
  });

  it('refuses inviting an existing member of the same org with 409 conflict and sends no mail', async () => {
    const owner = await signup(t.app);
    const member = await addMember(t, owner, 'member');
    const before = t.outbox().length;
    const response = await invite(owner, member.email, 'admin');
    expect(response.statusCode).toBe(409);
    expect(response.json().code).toBe('conflict');
    expect(t.outbox()).toHaveLength(before);
    expect(await roleOf(owner, member.userId)).toBe('member');
  });

  it('refuses an admin inviting an owner (403) but lets an owner do it', async () => {
    const owner = await signup(t.app);
    const admin = await addMember(t, owner, 'admin');
    const byAdmin = await invite(admin, uniqueEmail('would-be-owner'), 'owner');
    expect(byAdmin.statusCode).toBe(403);
    expect(byAdmin.json().code).toBe('forbidden');
    const email = uniqueEmail('co-owner');
    expect((await invite(owner, email, 'owner')).statusCode).toBe(201);
    expect((await accept(inviteToken(t, email))).json().user.role).toBe('owner');
  });

  it('refuses a plain member inviting anyone with 403 forbidden', async () => {
    const owner = await signup(t.app);
    const member = await addMember(t, owner, 'member');
    const response = await invite(member, uniqueEmail('friend'), 'member');
    expect(response.statusCode).toBe(403);
    expect(t.outbox().filter((m) => m.kind === 'invitation')).toHaveLength(1); // only the member's own invitation
  });

  it.each([
    ['a bad email', { email: 'not-an-email', role: 'member' }],
    ['an unknown role', { email: 'x@example.com', role: 'root' }],
    ['a missing role', { email: 'x@example.com' }],
  ])('refuses %s with 400 validation_failed', async (_label, payload) => {
    const owner = await signup(t.app);
    const response = await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/invitations`, ...asUser(owner.token), payload });
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('validation_failed');
  });
});
