/**
 * Right to erasure (GDPR Art. 17, CCPA "delete", VCDPA delete):
 * `POST /v1/me/erasure` (fresh reauthentication) and, for owners/admins,
 * `POST /v1/orgs/:orgId/members/:userId/erasure`. Afterwards no email, name,
 * phone, IP or user agent of the person may remain anywhere in the database
 * FILE — free pages and WAL included — while the audit chain keeps
 * verifying. Attacks covered: a stolen, stale session erasing the account;
 * an admin of another organization erasing a member of B (404); an admin
 * erasing an owner; leaving an organization without an owner.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GOOD_PASSWORD, addMember, asUser, buildTestApp, inviteToken, mailToken, sessionCookie, signup, uniqueEmail, type SignedUp, type TestApp } from '../helpers/app.js';
import { enrolTotp, makeEnterprise, totpCodeAt } from '../helpers/totp.js';
import BetterSqlite3 from 'better-sqlite3';
import { asUserFrom, auditEvents, databaseFilesAsTheyAre, device, foundInFile, rawDatabaseBytes, reauthenticate } from './helpers.js';

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

const count = (sql: string, ...args: unknown[]): number => (t.services.database.sqlite.prepare(sql).get(...args) as { n: number }).n;

/** Everything personal about one person, unique enough that a byte search cannot hit anything else. */
interface Person {
  member: SignedUp;
  name: string;
  phone: string;
  ip: string;
  userAgent: string;
  pendingEmail: string;
}

/**
 * A member who used every feature from their own device: accepted an
 * invitation, logged in, failed a login, set up TOTP (and hit the MFA step),
 * asked for a password reset, changed consents, set a phone, asked for an
 * email change, invited someone as an admin, and got an invitation from
 * another organization.
 */
async function busyPerson(owner: SignedUp): Promise<Person> {
  const person = {
    name: 'Zebulon Quixotic-Erasable',
    phone: '+358 40 917 3355',
    ip: '203.0.113.201',
    userAgent: 'Mozilla/5.0 (Erasure Test Browser 7.7; unique-ua-q9z7)',
    pendingEmail: uniqueEmail('pending-new-address'),
  };
  const email = uniqueEmail('zebulon');
  const from = device(person.ip, person.userAgent);
  const invite = await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/invitations`, ...asUser(owner.token), payload: { email, role: 'admin' } });
  expect(invite.statusCode).toBe(201);
  const accept = await t.app.inject({
    method: 'POST',
    url: '/v1/invitations/accept',
    ...from,
    payload: { token: inviteToken(t, email), name: person.name, password: GOOD_PASSWORD, ageConfirmed: true },
  });
  expect(accept.statusCode, accept.body).toBe(201);
  const member: SignedUp = { token: sessionCookie(accept), userId: accept.json<{ user: { id: string } }>().user.id, orgId: owner.orgId, email, password: GOOD_PASSWORD };
  const me = (token: string): ReturnType<typeof asUserFrom> => asUserFrom(token, person.ip, person.userAgent);

  expect((await t.app.inject({ method: 'POST', url: '/v1/login', ...from, payload: { email, password: 'wrong wrong wrong wrong' } })).statusCode).toBe(401);
  const { token: aal2, secret } = await enrolTotp(t, member);
  const mfaLogin = await t.app.inject({ method: 'POST', url: '/v1/login', ...from, payload: { email, password: GOOD_PASSWORD } });
  expect(mfaLogin.json().code).toBe('mfa_required');
  const pending = mfaLogin.cookies.find((c) => c.name === 'cleverom_mfa')?.value ?? '';
  t.clock.advance(30_000);
  const second = await t.app.inject({
    method: 'POST',
    url: '/v1/login/mfa',
    ...from,
    cookies: { cleverom_mfa: pending },
    payload: { code: await totpCodeAt(secret, t.clock.now()) },
  });
  expect(second.statusCode, second.body).toBe(200);
  const token = sessionCookie(second);
  expect((await t.app.inject({ method: 'POST', url: '/v1/password-reset', ...from, payload: { email } })).statusCode).toBe(202);
  expect((await t.app.inject({ method: 'PUT', url: '/v1/me/consents', ...me(token), payload: { marketing: true, saleOrShare: true } })).statusCode).toBe(200);
  expect((await t.app.inject({ method: 'PATCH', url: '/v1/me', ...me(token), payload: { phone: person.phone, email: person.pendingEmail } })).statusCode).toBe(200);
  const sent = await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/invitations`, ...me(token), payload: { email: uniqueEmail('invitee'), role: 'member' } });
  expect(sent.statusCode).toBe(201);
  const otherOrg = await signup(t.app, { orgName: 'Other Org' });
  await t.app.inject({ method: 'POST', url: `/v1/orgs/${otherOrg.orgId}/invitations`, ...asUser(otherOrg.token), payload: { email, role: 'member' } });
  expect(aal2).not.toBe(token);
  return { member: { ...member, token }, ...person };
}

function needlesOf(person: Person): string[] {
  return [person.member.email, person.name, person.phone, person.ip, person.userAgent, person.pendingEmail];
}

describe('self-service erasure', () => {
  it('leaves no email, name, phone, IP or user agent of the person anywhere in the database file, and the chain verifies', async () => {
    const owner = await signup(t.app, { name: 'Olivia Keeper' });
    await makeEnterprise(t, owner.orgId);
    const person = await busyPerson(owner);
    const { member } = person;

    // Everything is there before: the scan would find it.
    expect(foundInFile(rawDatabaseBytes(t), needlesOf(person)).sort()).toEqual(needlesOf(person).sort());

    const erase = await t.app.inject({ method: 'POST', url: '/v1/me/erasure', ...asUserFrom(member.token, person.ip, person.userAgent) });
    expect(erase.statusCode, erase.body).toBe(202);
    expect(erase.json()).toEqual({ status: 'completed', userId: member.userId, organizationDeleted: false });
    // The session cookie is cleared, and the session is gone server-side.
    expect(erase.cookies.find((c) => c.name === 'cleverom_session')?.value).toBe('');
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(member.token) })).statusCode).toBe(401);

    expect(foundInFile(rawDatabaseBytes(t), needlesOf(person))).toEqual([]);
    expect(t.services.audit.verify()).toMatchObject({ ok: true });

    // Pseudonymous ids stay in the chain; their personal side rows are gone.
    const db = t.services.database.sqlite;
    expect(count('SELECT COUNT(*) AS n FROM audit_events WHERE subject_id = ? OR actor_id = ?', member.userId, member.userId)).toBeGreaterThan(5);
    expect(count('SELECT COUNT(*) AS n FROM audit_pii WHERE user_id = ?', member.userId)).toBe(0);
    for (const table of ['users WHERE id = ?', 'sessions WHERE user_id = ?', 'totp_factors WHERE user_id = ?', 'recovery_codes WHERE user_id = ?',
      'mfa_challenges WHERE user_id = ?', 'password_reset_tokens WHERE user_id = ?', 'consent_history WHERE user_id = ?', 'privacy_tokens WHERE user_id = ?']) {
      expect(count(`SELECT COUNT(*) AS n FROM ${table}`, member.userId), table).toBe(0);
    }
    expect(count('SELECT COUNT(*) AS n FROM invitations WHERE email = ?', member.email)).toBe(0);
    expect(count('SELECT COUNT(*) AS n FROM invitations WHERE invited_by = ?', member.userId)).toBe(0);

    // The erasure itself is recorded with pseudonymous ids only, and no personal side row.
    const [event] = auditEvents(t, 'privacy.erased');
    expect(event).toMatchObject({ actor_type: 'user', actor_id: member.userId, subject_id: member.userId, org_id: owner.orgId, data: { via: 'self' }, pii: null });

    // The rest of the organization is untouched.
    expect((await t.app.inject({ method: 'GET', url: `/v1/orgs/${owner.orgId}/members`, ...asUser(owner.token) })).json().members).toEqual([
      expect.objectContaining({ id: owner.userId }),
    ]);
    expect(db.prepare('SELECT name FROM users WHERE id = ?').get(owner.userId)).toEqual({ name: 'Olivia Keeper' });
    // And the person cannot log in any more (the same answer as for an unknown email).
    const login = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: member.email, password: GOOD_PASSWORD } });
    expect(login.statusCode).toBe(401);
    expect(login.json().code).toBe('invalid_credentials');
  });

  it('needs a fresh reauthentication (a stale session cannot erase the account)', async () => {
    const owner = await signup(t.app);
    const member = await addMember(t, owner, 'member');
    t.clock.advance(11 * 60_000);
    const stale = await t.app.inject({ method: 'POST', url: '/v1/me/erasure', ...asUser(member.token) });
    expect(stale.statusCode).toBe(401);
    expect(stale.json().code).toBe('reauthentication_required');
    expect(count('SELECT COUNT(*) AS n FROM users WHERE id = ?', member.userId)).toBe(1);
    await reauthenticate(t, member);
    expect((await t.app.inject({ method: 'POST', url: '/v1/me/erasure', ...asUser(member.token) })).statusCode).toBe(202);
    expect(count('SELECT COUNT(*) AS n FROM users WHERE id = ?', member.userId)).toBe(0);
  });

  it('refuses the last owner (409 conflict) until ownership is handed over', async () => {
    const owner = await signup(t.app);
    const admin = await addMember(t, owner, 'admin');
    const refused = await t.app.inject({ method: 'POST', url: '/v1/me/erasure', ...asUser(owner.token) });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().code).toBe('conflict');
    expect(count('SELECT COUNT(*) AS n FROM users WHERE id = ?', owner.userId)).toBe(1);
    expect(auditEvents(t, 'privacy.erased')).toHaveLength(0);

    const promote = await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${owner.orgId}/members/${admin.userId}`, ...asUser(owner.token), payload: { role: 'owner' } });
    expect(promote.statusCode).toBe(200);
    expect((await t.app.inject({ method: 'POST', url: '/v1/me/erasure', ...asUser(owner.token) })).statusCode).toBe(202);
    expect((await t.app.inject({ method: 'GET', url: `/v1/orgs/${owner.orgId}/members`, ...asUser(admin.token) })).json().members).toHaveLength(1);
  });

  it('lets the only member of an organization erase themselves with the organization, on explicit request', async () => {
    const solo = await signup(t.app, { orgName: 'Solveig Soloist Consulting', name: 'Solveig Soloist' });
    await t.app.inject({ method: 'POST', url: `/v1/orgs/${solo.orgId}/invitations`, ...asUser(solo.token), payload: { email: uniqueEmail('never-accepted'), role: 'member' } });
    const refused = await t.app.inject({ method: 'POST', url: '/v1/me/erasure', ...asUser(solo.token) });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().detail).toContain('deleteOrganization=true');

    const response = await t.app.inject({ method: 'POST', url: '/v1/me/erasure?deleteOrganization=true', ...asUser(solo.token) });
    expect(response.statusCode, response.body).toBe(202);
    expect(response.json()).toEqual({ status: 'completed', userId: solo.userId, organizationDeleted: true });
    expect(count('SELECT COUNT(*) AS n FROM orgs WHERE id = ?', solo.orgId)).toBe(0);
    expect(count('SELECT COUNT(*) AS n FROM invitations WHERE org_id = ?', solo.orgId)).toBe(0);
    expect(foundInFile(rawDatabaseBytes(t), [solo.email, 'Solveig Soloist'])).toEqual([]);
    expect(auditEvents(t, 'privacy.erased')).toEqual([expect.objectContaining({ org_id: solo.orgId, data: { via: 'self', organizationDeleted: true } })]);
    expect(t.services.audit.verify().ok).toBe(true);
  });

  it('never deletes an organization that has other members', async () => {
    const owner = await signup(t.app);
    await addMember(t, owner, 'member');
    const response = await t.app.inject({ method: 'POST', url: '/v1/me/erasure?deleteOrganization=true', ...asUser(owner.token) });
    expect(response.statusCode).toBe(409);
    expect(count('SELECT COUNT(*) AS n FROM orgs WHERE id = ?', owner.orgId)).toBe(1);
  });

  it('needs the Origin header for a cookie session (CSRF)', async () => {
    const owner = await signup(t.app);
    const member = await addMember(t, owner, 'member');
    const response = await t.app.inject({ method: 'POST', url: '/v1/me/erasure', cookies: { cleverom_session: member.token }, headers: { origin: 'https://evil.example' } });
    expect(response.statusCode).toBe(403);
    expect(count('SELECT COUNT(*) AS n FROM users WHERE id = ?', member.userId)).toBe(1);
  });
});

describe('erasure by the organization (controller)', () => {
  it('lets an admin erase a member: the same scan comes back clean, the chain verifies, the event names admin and member', async () => {
    const owner = await signup(t.app);
    await makeEnterprise(t, owner.orgId);
    const admin = await addMember(t, owner, 'admin');
    const person = await busyPerson(owner);
    // Demote the busy person to member so an admin may act on them.
    await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${owner.orgId}/members/${person.member.userId}`, ...asUser(owner.token), payload: { role: 'member' } });

    const response = await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/members/${person.member.userId}/erasure`, ...asUser(admin.token), remoteAddress: '192.0.2.55' });
    expect(response.statusCode, response.body).toBe(202);
    expect(foundInFile(rawDatabaseBytes(t), needlesOf(person))).toEqual([]);
    expect(t.services.audit.verify().ok).toBe(true);
    const [event] = auditEvents(t, 'privacy.erased');
    expect(event).toMatchObject({ actor_id: admin.userId, subject_id: person.member.userId, org_id: owner.orgId, data: { via: 'org_admin' } });
    // The admin's own IP is kept in the side row, under the admin.
    expect(event).toMatchObject({ pii: { ip: '192.0.2.55' }, pii_user_id: admin.userId });
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(person.member.token) })).statusCode).toBe(401);
  });

  it('lets only an owner erase an owner, and never the last one', async () => {
    const owner = await signup(t.app);
    const admin = await addMember(t, owner, 'admin');
    const coOwner = await addMember(t, owner, 'owner');
    const byAdmin = await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/members/${coOwner.userId}/erasure`, ...asUser(admin.token) });
    expect(byAdmin.statusCode).toBe(403);
    expect(byAdmin.json().code).toBe('forbidden');
    expect((await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/members/${coOwner.userId}/erasure`, ...asUser(owner.token) })).statusCode).toBe(202);
    // Now the owner is the last one, also through the controller route (and fresh: signup just happened).
    const last = await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/members/${owner.userId}/erasure`, ...asUser(owner.token) });
    expect(last.statusCode).toBe(409);
  });

  it('needs a fresh session when the admin names themselves', async () => {
    const owner = await signup(t.app);
    const admin = await addMember(t, owner, 'admin');
    t.clock.advance(11 * 60_000);
    const response = await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/members/${admin.userId}/erasure`, ...asUser(admin.token) });
    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe('reauthentication_required');
  });

  it('refuses members (403) and other tenants (404), erasing nothing', async () => {
    const ownerA = await signup(t.app, { orgName: 'A' });
    const adminA = await addMember(t, ownerA, 'admin');
    const memberA = await addMember(t, ownerA, 'member');
    const ownerB = await signup(t.app, { orgName: 'B' });
    const memberB = await addMember(t, ownerB, 'member');
    const asMember = await t.app.inject({ method: 'POST', url: `/v1/orgs/${ownerA.orgId}/members/${adminA.userId}/erasure`, ...asUser(memberA.token) });
    expect(asMember.statusCode).toBe(403);
    for (const url of [`/v1/orgs/${ownerB.orgId}/members/${memberB.userId}/erasure`, `/v1/orgs/${ownerA.orgId}/members/${memberB.userId}/erasure`]) {
      const response = await t.app.inject({ method: 'POST', url, ...asUser(adminA.token) });
      expect(response.statusCode, url).toBe(404);
      expect(response.json().code).toBe('not_found');
    }
    expect(count('SELECT COUNT(*) AS n FROM users WHERE id IN (?, ?)', memberB.userId, adminA.userId)).toBe(2);
    expect(auditEvents(t, 'privacy.erased')).toHaveLength(0);
  });
});

describe('invitations to the erased address', () => {
  it('deletes pending invitations to the email and the inviter-side audit details naming it', async () => {
    const owner = await signup(t.app);
    const member = await addMember(t, owner, 'member');
    const other = await signup(t.app);
    await t.app.inject({ method: 'POST', url: `/v1/orgs/${other.orgId}/invitations`, ...asUser(other.token), payload: { email: member.email, role: 'member' } });
    expect(mailToken(t, member.email, 'invitation')).toBeTruthy();
    expect(count("SELECT COUNT(*) AS n FROM audit_pii WHERE json_extract(data, '$.email') = ?", member.email)).toBe(2);
    expect((await t.app.inject({ method: 'POST', url: '/v1/me/erasure', ...asUser(member.token) })).statusCode).toBe(202);
    expect(count('SELECT COUNT(*) AS n FROM invitations WHERE email = ?', member.email)).toBe(0);
    expect(count("SELECT COUNT(*) AS n FROM audit_pii WHERE json_extract(data, '$.email') = ?", member.email)).toBe(0);
    expect(foundInFile(rawDatabaseBytes(t), [member.email])).toEqual([]);
    expect(t.services.audit.verify().ok).toBe(true);
  });
});

describe('staff principal', () => {
  it('erases a staff member’s account and staff record but keeps the access requests (pseudonymous) as the security record', async () => {
    const { createStaff, requestAccess, bearer } = await import('../helpers/staff.js');
    const customer = await signup(t.app);
    await makeEnterprise(t, customer.orgId);
    const support = await createStaff(t, 'support', { name: 'Stanislav Staffperson' });
    const requestId = await requestAccess(t, support, { orgId: customer.orgId });
    const response = await t.app.inject({ method: 'POST', url: '/v1/me/erasure', ...bearer(support.token) });
    expect(response.statusCode, response.body).toBe(202);
    expect(count('SELECT COUNT(*) AS n FROM staff_members WHERE user_id = ?', support.id)).toBe(0);
    expect(t.services.database.sqlite.prepare('SELECT staff_id FROM access_requests WHERE id = ?').get(requestId)).toEqual({ staff_id: support.id });
    expect(foundInFile(rawDatabaseBytes(t), [support.email, 'Stanislav Staffperson'])).toEqual([]);
    expect(t.services.audit.verify().ok).toBe(true);
  });
});

/**
 * GDPR Art. 17 beyond the main file (issue 23 item 13). Attack covered: a
 * copy of the volume (or a file-level backup) taken right after the
 * erasure answered, with the service still running: the person's data was
 * still readable in `-wal` (a passive checkpoint copies frames but leaves
 * them in the file), and the development outbox kept the mails addressed
 * to them.
 */
describe('erasure leaves nothing in the WAL, the -shm or the outbox', () => {
  /** Mails still in the outbox that are addressed to, or mention, one of `addresses`. */
  const mailsOf = (addresses: string[]): string[] =>
    t.outbox().filter((m) => addresses.some((a) => m.to === a || m.text.includes(a) || m.subject.includes(a))).map((m) => `${m.kind} to ${m.to}`);

  it.each([
    ['self-service', 'self'],
    ['by an admin (controller)', 'controller'],
  ] as const)('%s: main, -wal and -shm as the running service leaves them hold none of it; their mails are gone', async (_label, how) => {
    const owner = await signup(t.app, { name: 'Olivia Keeper' });
    await makeEnterprise(t, owner.orgId);
    const admin = await addMember(t, owner, 'admin');
    const person = await busyPerson(owner);
    const addresses = [person.member.email, person.pendingEmail];
    // Before: the files as they are (no checkpoint) hold all of it, and there are mails to both addresses.
    expect(foundInFile(databaseFilesAsTheyAre(t), needlesOf(person)).sort()).toEqual(needlesOf(person).sort());
    expect(mailsOf(addresses).length).toBeGreaterThanOrEqual(4);

    let response;
    if (how === 'self') {
      response = await t.app.inject({ method: 'POST', url: '/v1/me/erasure', ...asUserFrom(person.member.token, person.ip, person.userAgent) });
    } else {
      await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${owner.orgId}/members/${person.member.userId}`, ...asUser(owner.token), payload: { role: 'member' } });
      response = await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/members/${person.member.userId}/erasure`, ...asUser(admin.token) });
    }
    expect(response.statusCode, response.body).toBe(202);

    // Right after the answer, no checkpoint of ours, the service still running.
    expect(foundInFile(databaseFilesAsTheyAre(t), needlesOf(person))).toEqual([]);
    expect(mailsOf(addresses)).toEqual([]);
    // Other people's mail stays (the owner's own invitation mails to others, for one).
    expect(t.outbox().length).toBeGreaterThan(0);
    // And the service goes on writing normally.
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(owner.token) })).statusCode).toBe(200);
    expect(t.services.audit.verify().ok).toBe(true);
  });

  it('cannot truncate the WAL while another process holds a snapshot; the erasure still answers, and truncating works once it is gone', async () => {
    const owner = await signup(t.app);
    const member = await addMember(t, owner, 'member');
    await reauthenticate(t, member);
    // A CLI process reading at the same time (an open read transaction).
    const reader = new BetterSqlite3(t.databaseFile, { readonly: true });
    try {
      reader.prepare('BEGIN').run();
      reader.prepare('SELECT COUNT(*) FROM users').get();
      expect(t.services.database.checkpointTruncate()).toBe(false);
      const response = await t.app.inject({ method: 'POST', url: '/v1/me/erasure', ...asUser(member.token) });
      expect(response.statusCode).toBe(202);
      reader.prepare('COMMIT').run();
    } finally {
      reader.close();
    }
    expect(t.services.database.checkpointTruncate()).toBe(true);
    expect(foundInFile(databaseFilesAsTheyAre(t), [member.email, 'Member member'])).toEqual([]);
  });
});
