/**
 * Right to rectification (GDPR Art. 16, VCDPA "correct"): `PATCH /v1/me`
 * changes name and phone at once; a new email only takes effect once a
 * single-use link mailed to the NEW address is confirmed by the logged-in
 * person (`POST /v1/me/email/confirm`), and the OLD address is told.
 * Attacks covered: account takeover through an email change from a stale
 * session; a token used by another account or twice; an address that
 * belongs to someone else (409).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GOOD_PASSWORD, addMember, asUser, buildTestApp, login, mailToken, signup, uniqueEmail, type SignedUp, type TestApp } from '../helpers/app.js';
import { auditEvents, reauthenticate } from './helpers.js';

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

const patchMe = (user: SignedUp, payload: Record<string, unknown>) => t.app.inject({ method: 'PATCH', url: '/v1/me', ...asUser(user.token), payload });
const confirm = (user: SignedUp, token: string) => t.app.inject({ method: 'POST', url: '/v1/me/email/confirm', ...asUser(user.token), payload: { token } });
const me = async (user: SignedUp): Promise<{ email: string; name: string; phone: string | null }> =>
  (await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(user.token) })).json<{ user: { email: string; name: string; phone: string | null } }>().user;

describe('name and phone', () => {
  it('changes both at once, audited without the values', async () => {
    const owner = await signup(t.app, { name: 'Old Name' });
    const response = await patchMe(owner, { name: 'New Name', phone: '+358 40 123 4567' });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ user: { name: 'New Name', phone: '+358 40 123 4567', email: owner.email }, pendingEmail: null });
    expect(await me(owner)).toMatchObject({ name: 'New Name', phone: '+358 40 123 4567' });
    expect((await patchMe(owner, { phone: null })).json().user.phone).toBeNull();
    const events = auditEvents(t, 'privacy.rectified');
    expect(events.map((e) => e.data)).toEqual([{ via: 'self', fields: ['name', 'phone'] }, { via: 'self', fields: ['phone'] }]);
    expect(JSON.stringify(events.map((e) => e.data))).not.toContain('New Name');
  });

  it.each([
    ['an empty body', {}],
    ['an unknown field', { role: 'owner' }],
    ['a blank name', { name: '   ' }],
    ['a phone with letters', { phone: 'call me' }],
    ['an invalid email', { email: 'not-an-email' }],
  ])('rejects %s with 400 validation_failed', async (_label, payload) => {
    const owner = await signup(t.app);
    const response = await patchMe(owner, payload);
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('validation_failed');
  });
});

describe('email change', () => {
  it('mails a link to the new address and a notice to the old one, and changes the address only on confirmation', async () => {
    const owner = await signup(t.app);
    const newEmail = uniqueEmail('renamed');
    const response = await patchMe(owner, { email: newEmail.toUpperCase() });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ user: { email: owner.email }, pendingEmail: newEmail });
    expect(await me(owner)).toMatchObject({ email: owner.email });

    const notice = t.outbox().find((m) => m.to === owner.email && m.kind === 'email_change_notice');
    expect(notice?.text).toContain(newEmail);
    expect(notice?.text).not.toMatch(/Token:/);
    const token = mailToken(t, newEmail, 'email_change');

    const confirmed = await confirm(owner, token);
    expect(confirmed.statusCode, confirmed.body).toBe(200);
    expect(confirmed.json().user.email).toBe(newEmail);
    expect(await me(owner)).toMatchObject({ email: newEmail });
    // Single use.
    expect((await confirm(owner, token)).statusCode).toBe(400);
    // The new address logs in; the old one no longer does.
    expect((await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: newEmail, password: GOOD_PASSWORD } })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: GOOD_PASSWORD } })).statusCode).toBe(401);

    expect(auditEvents(t, 'privacy.email_change_requested')).toHaveLength(1);
    const [changed] = auditEvents(t, 'privacy.email_changed');
    expect(changed).toMatchObject({ actor_id: owner.userId, subject_id: owner.userId });
    // No address in the hashed part of either event.
    const hashed = t.services.database.sqlite.prepare("SELECT data FROM audit_events WHERE action LIKE 'privacy.email%'").all() as { data: string }[];
    for (const row of hashed) expect(row.data).not.toMatch(/@/);
  });

  it('answers 409 when the address belongs to another account (at request and at confirmation)', async () => {
    const owner = await signup(t.app);
    const other = await addMember(t, owner, 'member');
    const taken = await patchMe(owner, { email: other.email });
    expect(taken.statusCode).toBe(409);
    expect(taken.json().code).toBe('conflict');
    expect(t.outbox().filter((m) => m.kind === 'email_change')).toHaveLength(0);

    const wanted = uniqueEmail('contested');
    expect((await patchMe(owner, { email: wanted })).statusCode).toBe(200);
    const token = mailToken(t, wanted, 'email_change');
    // Someone else takes the address before the confirmation.
    const invite = await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/invitations`, ...asUser(owner.token), payload: { email: wanted, role: 'member' } });
    expect(invite.statusCode).toBe(201);
    const accept = await t.app.inject({
      method: 'POST',
      url: '/v1/invitations/accept',
      payload: { token: mailToken(t, wanted, 'invitation'), name: 'Quick', password: GOOD_PASSWORD, ageConfirmed: true },
    });
    expect(accept.statusCode).toBe(201);
    const late = await confirm(owner, token);
    expect(late.statusCode).toBe(409);
    expect(await me(owner)).toMatchObject({ email: owner.email });
  });

  it('refuses a token from another account’s request (and keeps it usable for its owner)', async () => {
    const owner = await signup(t.app);
    const member = await addMember(t, owner, 'member');
    const wanted = uniqueEmail('mine');
    await patchMe(member, { email: wanted });
    const token = mailToken(t, wanted, 'email_change');
    const stolen = await confirm(owner, token);
    expect(stolen.statusCode).toBe(400);
    expect(stolen.json().code).toBe('validation_failed');
    expect(await me(owner)).toMatchObject({ email: owner.email });
    expect((await confirm(member, token)).statusCode).toBe(200);
  });

  it('needs a fresh authentication to ask for it, and a session to confirm it', async () => {
    const owner = await signup(t.app);
    t.clock.advance(11 * 60_000);
    const stale = await patchMe(owner, { email: uniqueEmail('late') });
    expect(stale.statusCode).toBe(401);
    expect(stale.json().code).toBe('reauthentication_required');
    // Name and phone need no reauthentication.
    expect((await patchMe(owner, { name: 'Still Me' })).statusCode).toBe(200);
    await reauthenticate(t, owner);
    const wanted = uniqueEmail('fresh');
    expect((await patchMe(owner, { email: wanted })).statusCode).toBe(200);
    const token = mailToken(t, wanted, 'email_change');
    expect((await t.app.inject({ method: 'POST', url: '/v1/me/email/confirm', payload: { token } })).statusCode).toBe(401);
  });

  it('expires the link after 24 hours and honours only the latest request', async () => {
    const owner = await signup(t.app);
    const first = uniqueEmail('first');
    const second = uniqueEmail('second');
    await patchMe(owner, { email: first });
    await patchMe(owner, { email: second });
    expect((await confirm(owner, mailToken(t, first, 'email_change'))).statusCode).toBe(400);
    const token = mailToken(t, second, 'email_change');
    t.clock.advance(24 * 3600_000 + 1);
    const relogged = { ...owner, token: await login(t.app, owner.email) };
    expect((await confirm(relogged, token)).statusCode).toBe(400);
  });
});
