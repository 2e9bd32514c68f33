/**
 * Right of access and portability (GDPR Art. 15/20, CCPA "know", VCDPA
 * access/copy): `GET /v1/me/export` and, for an organization's owners and
 * admins acting as controllers, `GET /v1/orgs/:orgId/members/:userId/export`
 * return one versioned JSON document with everything held about the person —
 * and never a secret, hash or sealed value. Attack covered: an admin of
 * another organization (or a plain member) reading someone's export.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addMember, asUser, buildTestApp, login, mailToken, signup, uniqueEmail, type SignedUp, type TestApp } from '../helpers/app.js';
import { bearer, createStaff, requestAccess } from '../helpers/staff.js';
import { enrolTotp, makeEnterprise } from '../helpers/totp.js';
import { auditEvents, device } from './helpers.js';

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

type ExportDoc = Record<string, unknown> & {
  schemaVersion: number;
  generatedAt: string;
  subject: { userId: string; email: string; orgId: string | null };
  requestedBy: { userId: string; via: string };
  profile: Record<string, unknown>;
  organization: Record<string, unknown> | null;
  invitations: { received: Record<string, unknown>[]; sent: Record<string, unknown>[] };
  sessions: Record<string, unknown>[];
  passwordResets: Record<string, unknown>[];
  mfa: { totp: Record<string, unknown> | null; recoveryCodes: { total: number; unused: number }; challenges: unknown[] };
  consents: { marketing: boolean; saleOrShare: boolean; history: Record<string, unknown>[] };
  ssoIdentities: unknown[];
  staff: Record<string, unknown> | null;
  staffAccessRequests: Record<string, unknown>[];
  auditEvents: { action: string; subjectId: string | null; actorId: string | null; personalDetails: Record<string, unknown> | null }[];
};

async function exportOf(user: SignedUp): Promise<ExportDoc> {
  const response = await t.app.inject({ method: 'GET', url: '/v1/me/export', ...asUser(user.token) });
  expect(response.statusCode, response.body).toBe(200);
  expect(response.headers['content-disposition']).toContain('attachment');
  return response.json<ExportDoc>();
}

describe('self-service export', () => {
  it('holds profile, organization and role, sessions and devices, consents with history, MFA metadata, invitations and audit events', async () => {
    const owner = await signup(t.app, { name: 'Olga Owner', orgName: 'Export Oy' });
    await makeEnterprise(t, owner.orgId);
    const member = await addMember(t, owner, 'member');
    // A second session from a recognisable device, a TOTP factor, a reset and consent changes.
    const ua = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 export-test';
    const loggedIn = await t.app.inject({ method: 'POST', url: '/v1/login', ...device('198.51.100.23', ua), payload: { email: member.email, password: member.password } });
    expect(loggedIn.statusCode).toBe(200);
    const { token: aal2, secret } = await enrolTotp(t, member);
    const me: SignedUp = { ...member, token: aal2 };
    await t.app.inject({ method: 'POST', url: '/v1/password-reset', payload: { email: member.email } });
    await t.app.inject({ method: 'PUT', url: '/v1/me/consents', ...asUser(aal2), payload: { marketing: true } });
    await t.app.inject({ method: 'PUT', url: '/v1/me/consents', ...asUser(aal2), payload: { marketing: false, saleOrShare: true } });

    const doc = await exportOf(me);
    expect(doc.schemaVersion).toBe(1);
    expect(Date.parse(doc.generatedAt)).not.toBeNaN();
    expect(doc.subject).toEqual({ userId: member.userId, email: member.email, orgId: owner.orgId });
    expect(doc.requestedBy).toEqual({ userId: member.userId, via: 'self' });
    expect(doc.profile).toMatchObject({ id: member.userId, email: member.email, name: 'Member member', status: 'active', hasPassword: true });
    expect(doc.profile.ageConfirmedAt).toEqual(expect.any(String));
    expect(doc.organization).toMatchObject({ id: owner.orgId, name: 'Export Oy', role: 'member', plan: 'enterprise' });
    expect(doc.invitations.received).toEqual([expect.objectContaining({ email: member.email, orgId: owner.orgId, role: 'member' })]);
    const firefox = doc.sessions.find((s) => s.userAgent === ua);
    expect(firefox).toMatchObject({ ip: '198.51.100.23', device: 'Firefox 128 on Linux', authMethod: 'password', aal: 1 });
    expect(doc.passwordResets).toHaveLength(1);
    expect(doc.mfa.totp).toMatchObject({ status: 'confirmed' });
    expect(doc.mfa.recoveryCodes).toMatchObject({ total: 10, unused: 10 });
    expect(doc.consents).toMatchObject({ marketing: false, saleOrShare: true });
    expect(doc.consents.history.map((h) => [h.purpose, h.granted, h.source])).toEqual([
      ['marketing', true, 'api'],
      ['marketing', false, 'api'],
      ['saleOrShare', true, 'api'],
    ]);
    expect(doc.ssoIdentities).toEqual([]);
    expect(doc.staff).toBeNull();
    const actions = doc.auditEvents.map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['invitation.accepted', 'auth.login.succeeded', 'mfa.totp.confirmed', 'password.reset_requested', 'privacy.consents_changed']));
    const login = doc.auditEvents.find((e) => e.action === 'auth.login.succeeded');
    expect(login?.personalDetails).toMatchObject({ ip: '198.51.100.23', userAgent: ua });
    for (const event of doc.auditEvents) expect([event.subjectId, event.actorId]).toContain(member.userId);

    // Never a secret, a hash or a sealed value.
    const text = JSON.stringify(doc);
    const row = t.services.database.sqlite.prepare('SELECT password_hash FROM users WHERE id = ?').get(member.userId) as { password_hash: string };
    const factor = t.services.database.sqlite.prepare('SELECT secret_sealed FROM totp_factors WHERE user_id = ?').get(member.userId) as { secret_sealed: string };
    const hashes = t.services.database.sqlite.prepare(
      `SELECT token_hash AS h FROM sessions WHERE user_id = @id UNION ALL SELECT code_hash FROM recovery_codes WHERE user_id = @id
       UNION ALL SELECT token_hash FROM password_reset_tokens WHERE user_id = @id`,
    ).all({ id: member.userId }) as { h: string }[];
    for (const needle of [row.password_hash, factor.secret_sealed, secret, member.password, ...hashes.map((h) => h.h)]) {
      expect(text).not.toContain(needle);
    }
    expect(text).not.toMatch(/argon2|secret_?sealed|token_?hash|code_?hash/i);
  });

  it('is audited with who asked and about whom; the IP and user agent only in the personal side row', async () => {
    const owner = await signup(t.app);
    await t.app.inject({ method: 'GET', url: '/v1/me/export', ...asUser(owner.token), ...{ remoteAddress: '192.0.2.7' } });
    const [event] = auditEvents(t, 'privacy.exported');
    expect(event).toMatchObject({ actor_type: 'user', actor_id: owner.userId, subject_id: owner.userId, org_id: owner.orgId, data: { via: 'self', schemaVersion: 1 } });
    expect(JSON.stringify(event?.data)).not.toContain('192.0.2.7');
    expect(event?.pii).toMatchObject({ ip: '192.0.2.7' });
  });

  it('includes staff access records for a staff principal', async () => {
    const customer = await signup(t.app);
    await makeEnterprise(t, customer.orgId);
    const support = await createStaff(t, 'support');
    const requestId = await requestAccess(t, support, { orgId: customer.orgId, reason: 'Ticket 42: login trouble' });
    const response = await t.app.inject({ method: 'GET', url: '/v1/me/export', ...bearer(support.token) });
    expect(response.statusCode, response.body).toBe(200);
    const doc = response.json<ExportDoc>();
    expect(doc.subject.orgId).toBeNull();
    expect(doc.organization).toBeNull();
    expect(doc.staff).toMatchObject({ role: 'support', ndaSignedAt: '2026-01-02' });
    expect(doc.staffAccessRequests).toEqual([expect.objectContaining({ id: requestId, orgId: customer.orgId, reason: 'Ticket 42: login trouble', status: 'pending' })]);
  });
});

describe('export by the organization (controller)', () => {
  it('lets an owner or admin export a member, audited as on the member’s behalf', async () => {
    const owner = await signup(t.app);
    const admin = await addMember(t, owner, 'admin');
    const member = await addMember(t, owner, 'member');
    for (const actor of [owner, admin]) {
      const response = await t.app.inject({ method: 'GET', url: `/v1/orgs/${owner.orgId}/members/${member.userId}/export`, ...asUser(actor.token) });
      expect(response.statusCode, response.body).toBe(200);
      const doc = response.json<ExportDoc>();
      expect(doc.subject.userId).toBe(member.userId);
      expect(doc.profile.email).toBe(member.email);
      expect(doc.requestedBy).toEqual({ userId: actor.userId, via: 'org_admin' });
    }
    const events = auditEvents(t, 'privacy.exported');
    expect(events.map((e) => [e.actor_id, e.subject_id, e.data.via])).toEqual([
      [owner.userId, member.userId, 'org_admin'],
      [admin.userId, member.userId, 'org_admin'],
    ]);
    // The admin's own IP side row is under the admin, not the member.
    expect(t.services.database.sqlite.prepare('SELECT user_id FROM audit_pii WHERE seq = ?').get(events[1]?.seq)).toEqual({ user_id: admin.userId });
  });

  it('refuses a plain member (403) and every cross-tenant request (404, nothing recorded)', async () => {
    const ownerA = await signup(t.app, { orgName: 'A' });
    const adminA = await addMember(t, ownerA, 'admin');
    const memberA = await addMember(t, ownerA, 'member');
    const ownerB = await signup(t.app, { orgName: 'B' });
    const memberB = await addMember(t, ownerB, 'member');

    const asMember = await t.app.inject({ method: 'GET', url: `/v1/orgs/${ownerA.orgId}/members/${adminA.userId}/export`, ...asUser(memberA.token) });
    expect(asMember.statusCode).toBe(403);
    expect(asMember.json().code).toBe('forbidden');

    const before = auditEvents(t, 'privacy.exported').length;
    for (const url of [
      `/v1/orgs/${ownerB.orgId}/members/${memberB.userId}/export`, // B's org and member
      `/v1/orgs/${ownerA.orgId}/members/${memberB.userId}/export`, // B's member under A's org
    ]) {
      const response = await t.app.inject({ method: 'GET', url, ...asUser(adminA.token) });
      expect(response.statusCode, url).toBe(404);
      expect(response.json().code).toBe('not_found');
      expect(response.body).not.toContain(memberB.email);
    }
    expect(auditEvents(t, 'privacy.exported')).toHaveLength(before);
  });

  it('needs a session', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/v1/me/export' })).statusCode).toBe(401);
  });
});

describe('invitations by email', () => {
  it('lists invitations addressed to the person, including from another organization', async () => {
    const ownerA = await signup(t.app);
    const member = await addMember(t, ownerA, 'member');
    const ownerB = await signup(t.app);
    const invite = await t.app.inject({ method: 'POST', url: `/v1/orgs/${ownerB.orgId}/invitations`, ...asUser(ownerB.token), payload: { email: member.email, role: 'admin' } });
    expect(invite.statusCode).toBe(201);
    expect(mailToken(t, member.email, 'invitation')).toBeTruthy();
    const token = await login(t.app, member.email);
    const doc = await exportOf({ ...member, token });
    expect(doc.invitations.received.map((i) => i.orgId)).toEqual([ownerA.orgId, ownerB.orgId]);
    const ownerDoc = await exportOf(ownerB);
    // The inviter sees that they invited someone, not the invitee's address.
    expect(ownerDoc.invitations.sent).toEqual([expect.objectContaining({ role: 'admin', orgId: ownerB.orgId })]);
    expect(JSON.stringify(ownerDoc.invitations.sent)).not.toContain(member.email);
  });
});

/**
 * Exports are limited per calling account (issue 23 item 15; ASVS 5.0 2.4.1
 * anti-automation): an export reads everything held about a person, so a
 * stolen session repeating it — or an admin session exporting the whole
 * organization — is throttled. Attack covered: six exports in a row, all 200.
 */
describe('export rate limit', () => {
  it('allows 5 an hour, then 429 rate_limited with Retry-After, audited; the window slides', async () => {
    const owner = await signup(t.app);
    for (let i = 0; i < 5; i += 1) {
      expect((await t.app.inject({ method: 'GET', url: '/v1/me/export', ...asUser(owner.token) })).statusCode).toBe(200);
      t.clock.advance(60_000);
    }
    // The first export was 5 minutes ago: it leaves the window in 55 minutes.
    const refused = await t.app.inject({ method: 'GET', url: '/v1/me/export', ...asUser(owner.token) });
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['content-type']).toContain('application/problem+json');
    expect(refused.json()).toMatchObject({ code: 'rate_limited', retryAfter: 55 * 60 });
    expect(refused.headers['retry-after']).toBe(String(55 * 60));
    expect(refused.headers['content-disposition']).toBeUndefined();
    expect(refused.body).not.toContain(owner.email);

    expect(auditEvents(t, 'privacy.exported')).toHaveLength(5);
    const [refusal, ...more] = auditEvents(t, 'privacy.export_rate_limited');
    expect(more).toEqual([]);
    expect(refusal).toMatchObject({ actor_id: owner.userId, subject_id: owner.userId, data: { via: 'self', limit: 5, windowMinutes: 60 } });

    t.clock.advance(55 * 60_000);
    expect((await t.app.inject({ method: 'GET', url: '/v1/me/export', ...asUser(owner.token) })).statusCode).toBe(200);
    // Only one has left the window.
    expect((await t.app.inject({ method: 'GET', url: '/v1/me/export', ...asUser(owner.token) })).statusCode).toBe(429);
  });

  it('counts the caller, on both routes together: an admin exporting members does not use up a member’s own exports', async () => {
    const owner = await signup(t.app);
    const admin = await addMember(t, owner, 'admin');
    const member = await addMember(t, owner, 'member');
    const other = await addMember(t, owner, 'member');
    for (let i = 0; i < 4; i += 1) {
      expect((await t.app.inject({ method: 'GET', url: `/v1/orgs/${owner.orgId}/members/${member.userId}/export`, ...asUser(admin.token) })).statusCode).toBe(200);
    }
    expect((await t.app.inject({ method: 'GET', url: '/v1/me/export', ...asUser(admin.token) })).statusCode).toBe(200);
    const sixth = await t.app.inject({ method: 'GET', url: `/v1/orgs/${owner.orgId}/members/${other.userId}/export`, ...asUser(admin.token) });
    expect(sixth.statusCode).toBe(429);
    expect(auditEvents(t, 'privacy.export_rate_limited')).toEqual([
      expect.objectContaining({ actor_id: admin.userId, subject_id: other.userId, data: expect.objectContaining({ via: 'org_admin' }) }),
    ]);
    // The member's own right of access is untouched.
    expect((await t.app.inject({ method: 'GET', url: '/v1/me/export', ...asUser(member.token) })).statusCode).toBe(200);
  });

  it('EXPORTS_PER_HOUR sets the limit', async () => {
    await t.close();
    t = await buildTestApp({ env: { EXPORTS_PER_HOUR: '1' } });
    const owner = await signup(t.app);
    expect((await t.app.inject({ method: 'GET', url: '/v1/me/export', ...asUser(owner.token) })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/v1/me/export', ...asUser(owner.token) })).statusCode).toBe(429);
  });
});

/**
 * GDPR Art. 15(4): a person's copy must not carry other people's personal
 * data. Attack covered: an export that handed over the address of someone
 * the person had invited (kept beside the inviter's IP in the audit side
 * row), or another member's email or name. Other people appear by id and
 * role only.
 */
describe('other people in an export', () => {
  it('appear by id and role, never by email or name', async () => {
    const owner = await signup(t.app, { name: 'Olga Distinct-Owner' });
    const admin = await addMember(t, owner, 'admin');
    await t.app.inject({ method: 'PATCH', url: '/v1/me', ...asUser(admin.token), payload: { name: 'Adam Distinct-Admin' } });
    const member = await addMember(t, admin, 'member');
    await t.app.inject({ method: 'PATCH', url: '/v1/me', ...asUser(member.token), payload: { name: 'Mia Distinct-Member' } });
    const promoted = await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${owner.orgId}/members/${member.userId}`, ...asUser(owner.token), payload: { role: 'admin' } });
    expect(promoted.statusCode).toBe(200);
    const pending = uniqueEmail('pending-invitee');
    const invited = await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/invitations`, ...asUser(member.token), payload: { email: pending, role: 'member' } });
    expect(invited.statusCode).toBe(201);

    const people = [
      { user: owner, personal: [owner.email, 'Olga Distinct-Owner'] },
      { user: admin, personal: [admin.email, 'Adam Distinct-Admin'] },
      { user: member, personal: [member.email, 'Mia Distinct-Member'] },
    ];
    const exports: { of: SignedUp; text: string }[] = [];
    for (const { user } of people) exports.push({ of: user, text: JSON.stringify(await exportOf(user)) });
    // An owner exporting a member gets the member's data, not the owner's or anyone else's.
    const byOwner = await t.app.inject({ method: 'GET', url: `/v1/orgs/${owner.orgId}/members/${member.userId}/export`, ...asUser(owner.token) });
    exports.push({ of: member, text: byOwner.body });

    for (const { of, text } of exports) {
      const others = people.filter((p) => p.user !== of).flatMap((p) => p.personal);
      expect(others.filter((needle) => text.includes(needle)), `export of ${of.email}`).toEqual([]);
      if (of !== member) expect(text).not.toContain(pending);
    }
    // The member's own export shows whom they invited by invitation id and role.
    const memberDoc = JSON.parse(exports[2]?.text ?? '{}') as ExportDoc;
    expect(exports[2]?.text).not.toContain(pending);
    const created = memberDoc.auditEvents.find((e) => e.action === 'invitation.created');
    expect(created?.personalDetails).toEqual({ ip: '127.0.0.1', userAgent: 'lightMyRequest', otherPerson: { role: 'invitee', invitationId: invited.json().invitationId } });
    // Their own email is still there, where it is theirs.
    expect(memberDoc.profile.email).toBe(member.email);
  });
});
