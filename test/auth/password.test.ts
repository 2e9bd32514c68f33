import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GOOD_PASSWORD, PUBLIC_ORIGIN, asUser, auditActions, buildTestApp, login, mailToken, sessionCookie, signup, uniqueEmail, type TestApp } from '../helpers/app.js';

/**
 * Password change, reset by email and re-authentication (API.md "Sign-up,
 * login, sessions"; SECURITY.md "password", "throttling", "session lifetime").
 */

const NEW_PASSWORD = 'a brand new passphrase for me';
const MINUTE = 60_000;

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

const me = (token: string) => t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(token) });
const tryLogin = (email: string, password: string) => t.app.inject({ method: 'POST', url: '/v1/login', payload: { email, password } });
const changePassword = (token: string, payload: Record<string, unknown>) =>
  t.app.inject({ method: 'POST', url: '/v1/me/password', ...asUser(token), payload });
const requestReset = (email: string) => t.app.inject({ method: 'POST', url: '/v1/password-reset', payload: { email } });
const confirmReset = (token: string, newPassword: string) =>
  t.app.inject({ method: 'POST', url: '/v1/password-reset/confirm', payload: { token, newPassword } });
const reauthenticate = (token: string, payload?: unknown) =>
  t.app.inject({
    method: 'POST',
    url: '/v1/me/reauthenticate',
    cookies: { cleverom_session: token },
    headers: { origin: PUBLIC_ORIGIN, 'content-type': 'application/json' },
    payload: payload === undefined ? '' : JSON.stringify(payload),
  });

function resetMails(to: string) {
  return t.outbox().filter((m) => m.to === to && m.kind === 'password_reset');
}

function passwordHashOf(userId: string): string {
  return (t.services.database.sqlite.prepare('SELECT password_hash FROM users WHERE id = ?').get(userId) as { password_hash: string }).password_hash;
}

describe('POST /v1/me/password', () => {
  it('refuses a wrong current password with 401 invalid_credentials and keeps the old password', async () => {
    const owner = await signup(t.app);
    const hash = passwordHashOf(owner.userId);
    const response = await changePassword(owner.token, { currentPassword: 'not my current password', newPassword: NEW_PASSWORD });
    expect(response.statusCode).toBe(401);
    expect(response.json()).toMatchObject({ code: 'invalid_credentials' });
    expect(passwordHashOf(owner.userId)).toBe(hash);
    expect((await tryLogin(owner.email, GOOD_PASSWORD)).statusCode).toBe(200);
    expect((await tryLogin(owner.email, NEW_PASSWORD)).statusCode).toBe(401);
  });

  it.each([
    ['too short', 'short new pass'],
    ['common', 'qwertyuiop12345'],
    ['too long', 'x y '.repeat(65)],
  ])('refuses a weak new password (%s) with 400 validation_failed naming newPassword', async (_label, newPassword) => {
    const owner = await signup(t.app);
    const hash = passwordHashOf(owner.userId);
    const response = await changePassword(owner.token, { currentPassword: GOOD_PASSWORD, newPassword });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'validation_failed', errors: [{ field: 'newPassword' }] });
    expect(passwordHashOf(owner.userId)).toBe(hash);
  });

  it('changes the password (204), revokes the other sessions and keeps the current one', async () => {
    const owner = await signup(t.app);
    const laptop = await login(t.app, owner.email);
    const phone = await login(t.app, owner.email);

    const response = await changePassword(laptop, { currentPassword: GOOD_PASSWORD, newPassword: NEW_PASSWORD });
    expect(response.statusCode).toBe(204);

    expect((await me(laptop)).statusCode).toBe(200);
    expect((await me(phone)).statusCode).toBe(401);
    expect((await me(owner.token)).statusCode).toBe(401);
    expect((await tryLogin(owner.email, NEW_PASSWORD)).statusCode).toBe(200);
    const old = await tryLogin(owner.email, GOOD_PASSWORD);
    expect(old.statusCode).toBe(401);
    expect(old.json().code).toBe('invalid_credentials');

    const row = t.services.database.sqlite.prepare("SELECT data FROM audit_events WHERE action = 'password.changed'").get() as { data: string };
    expect(JSON.parse(row.data)).toMatchObject({ sessionsRevoked: 2 });
    expect(auditActions(t)).toContain('password.changed');
    const everything = JSON.stringify(t.services.database.sqlite.prepare('SELECT * FROM audit_events').all());
    expect(everything).not.toContain(NEW_PASSWORD);
    expect(everything).not.toContain(GOOD_PASSWORD);
  });

  it('needs a session and an Origin for a cookie', async () => {
    const owner = await signup(t.app);
    const anonymous = await t.app.inject({ method: 'POST', url: '/v1/me/password', headers: { origin: PUBLIC_ORIGIN }, payload: { currentPassword: GOOD_PASSWORD, newPassword: NEW_PASSWORD } });
    expect(anonymous.statusCode).toBe(401);
    const noOrigin = await t.app.inject({
      method: 'POST',
      url: '/v1/me/password',
      cookies: { cleverom_session: owner.token },
      payload: { currentPassword: GOOD_PASSWORD, newPassword: NEW_PASSWORD },
    });
    expect(noOrigin.statusCode).toBe(403);
    expect(noOrigin.json().code).toBe('csrf_failed');
    expect((await tryLogin(owner.email, GOOD_PASSWORD)).statusCode).toBe(200);
  });

  it('counts wrong current passwords against the account lock', async () => {
    const owner = await signup(t.app);
    for (let i = 0; i < 5; i += 1) {
      expect((await changePassword(owner.token, { currentPassword: `wrong guess number ${i}`, newPassword: NEW_PASSWORD })).statusCode).toBe(401);
    }
    const locked = await changePassword(owner.token, { currentPassword: GOOD_PASSWORD, newPassword: NEW_PASSWORD });
    expect(locked.statusCode).toBe(423);
    expect(locked.json().code).toBe('account_locked');
  });
});

describe('POST /v1/password-reset', () => {
  it('always answers 202: a mail for a known account, nothing for an unknown one', async () => {
    const owner = await signup(t.app);
    const known = await requestReset(owner.email);
    const unknown = await requestReset(uniqueEmail('nobody'));
    expect(known.statusCode).toBe(202);
    expect(unknown.statusCode).toBe(202);
    expect(unknown.body).toBe(known.body);
    expect(unknown.headers['content-type']).toBe(known.headers['content-type']);
    const mails = t.outbox();
    expect(mails).toHaveLength(1);
    expect(mails[0]).toMatchObject({ to: owner.email, kind: 'password_reset' });
    // The link points at the public URL and carries the token; the token is long and random.
    const token = mailToken(t, owner.email, 'password_reset');
    expect(token.length).toBeGreaterThanOrEqual(43);
    expect(mails[0]?.text).toContain(`${PUBLIC_ORIGIN}/password-reset?token=${token}`);
    // Only the hash of the token is stored.
    expect(JSON.stringify(t.services.database.sqlite.prepare('SELECT * FROM password_reset_tokens').all())).not.toContain(token);
  });

  it('finds the account whatever the case of the email', async () => {
    const owner = await signup(t.app);
    expect((await requestReset(owner.email.toUpperCase())).statusCode).toBe(202);
    expect(resetMails(owner.email)).toHaveLength(1);
  });

  it('refuses a malformed email with 400 (schema), not 202', async () => {
    const response = await requestReset('not an email');
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('validation_failed');
  });

  it('sends at most 3 mails per hour per account, still answering 202', async () => {
    const owner = await signup(t.app);
    for (let i = 0; i < 5; i += 1) expect((await requestReset(owner.email)).statusCode).toBe(202);
    expect(resetMails(owner.email)).toHaveLength(3);
    t.clock.advance(61 * MINUTE);
    expect((await requestReset(owner.email)).statusCode).toBe(202);
    expect(resetMails(owner.email)).toHaveLength(4);
  });

  it('the per-account mail limit is per account', async () => {
    const ann = await signup(t.app);
    const bob = await signup(t.app);
    for (let i = 0; i < 3; i += 1) await requestReset(ann.email);
    await requestReset(bob.email);
    expect(resetMails(bob.email)).toHaveLength(1);
  });
});

describe('POST /v1/password-reset/confirm', () => {
  it('sets the new password (204) and revokes every session of the user', async () => {
    const owner = await signup(t.app);
    const other = await login(t.app, owner.email);
    const bystander = await signup(t.app);
    await requestReset(owner.email);
    const token = mailToken(t, owner.email, 'password_reset');

    const response = await confirmReset(token, NEW_PASSWORD);
    expect(response.statusCode).toBe(204);
    expect((await me(owner.token)).statusCode).toBe(401);
    expect((await me(other)).statusCode).toBe(401);
    expect((await me(bystander.token)).statusCode).toBe(200);
    expect((await tryLogin(owner.email, NEW_PASSWORD)).statusCode).toBe(200);
    expect((await tryLogin(owner.email, GOOD_PASSWORD)).statusCode).toBe(401);
    expect(auditActions(t)).toEqual(expect.arrayContaining(['password.reset_requested', 'password.reset_completed']));
  });

  it('a token is single use: the second confirm answers 400', async () => {
    const owner = await signup(t.app);
    await requestReset(owner.email);
    const token = mailToken(t, owner.email, 'password_reset');
    expect((await confirmReset(token, NEW_PASSWORD)).statusCode).toBe(204);
    const again = await confirmReset(token, 'an attacker chosen passphrase');
    expect(again.statusCode).toBe(400);
    expect(again.json()).toMatchObject({ code: 'validation_failed', errors: [{ field: 'token' }] });
    expect((await tryLogin(owner.email, NEW_PASSWORD)).statusCode).toBe(200);
    expect((await tryLogin(owner.email, 'an attacker chosen passphrase')).statusCode).toBe(401);
  });

  it('a token still works at 29 minutes', async () => {
    const owner = await signup(t.app);
    await requestReset(owner.email);
    const token = mailToken(t, owner.email, 'password_reset');
    t.clock.advance(29 * MINUTE);
    expect((await confirmReset(token, NEW_PASSWORD)).statusCode).toBe(204);
  });

  it('a token expires after 30 minutes (400) and the password stays', async () => {
    const owner = await signup(t.app);
    await requestReset(owner.email);
    const token = mailToken(t, owner.email, 'password_reset');
    t.clock.advance(31 * MINUTE);
    const response = await confirmReset(token, NEW_PASSWORD);
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('validation_failed');
    expect((await tryLogin(owner.email, GOOD_PASSWORD)).statusCode).toBe(200);
  });

  it('refuses an unknown token with 400', async () => {
    const response = await confirmReset('A'.repeat(43), NEW_PASSWORD);
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('validation_failed');
  });

  it('a weak new password is refused (400) without burning the token', async () => {
    const owner = await signup(t.app);
    await requestReset(owner.email);
    const token = mailToken(t, owner.email, 'password_reset');
    const weak = await confirmReset(token, 'qwertyuiop12345');
    expect(weak.statusCode).toBe(400);
    expect(weak.json()).toMatchObject({ code: 'validation_failed', errors: [{ field: 'newPassword' }] });
    expect((await confirmReset(token, NEW_PASSWORD)).statusCode).toBe(204);
  });

  it('using one token voids the other outstanding tokens of the user', async () => {
    const owner = await signup(t.app);
    await requestReset(owner.email);
    const first = mailToken(t, owner.email, 'password_reset');
    t.clock.advance(1000);
    await requestReset(owner.email);
    const second = mailToken(t, owner.email, 'password_reset');
    expect(second).not.toBe(first);
    expect((await confirmReset(second, NEW_PASSWORD)).statusCode).toBe(204);
    expect((await confirmReset(first, 'yet another passphrase here')).statusCode).toBe(400);
    expect((await tryLogin(owner.email, NEW_PASSWORD)).statusCode).toBe(200);
  });

  it("one user's token cannot change another user's password", async () => {
    const ann = await signup(t.app);
    const bob = await signup(t.app);
    await requestReset(ann.email);
    const token = mailToken(t, ann.email, 'password_reset');
    expect((await confirmReset(token, NEW_PASSWORD)).statusCode).toBe(204);
    expect((await tryLogin(bob.email, GOOD_PASSWORD)).statusCode).toBe(200);
    expect((await tryLogin(bob.email, NEW_PASSWORD)).statusCode).toBe(401);
  });

  it('lifts a login lock: after 5 failures and a reset the new password logs in immediately', async () => {
    const owner = await signup(t.app);
    for (let i = 0; i < 5; i += 1) expect((await tryLogin(owner.email, 'wrong password, sorry')).statusCode).toBe(401);
    expect((await tryLogin(owner.email, GOOD_PASSWORD)).statusCode).toBe(423);

    await requestReset(owner.email);
    expect((await confirmReset(mailToken(t, owner.email, 'password_reset'), NEW_PASSWORD)).statusCode).toBe(204);
    const response = await tryLogin(owner.email, NEW_PASSWORD);
    expect(response.statusCode).toBe(200);
    expect(sessionCookie(response)).toBeTruthy();
  });
});

describe('POST /v1/me/reauthenticate', () => {
  const reauthenticatedAt = (token: string) =>
    me(token).then((r) => {
      const id = r.json().session.id as string;
      return (t.services.database.sqlite.prepare('SELECT reauthenticated_at FROM sessions WHERE id = ?').get(id) as { reauthenticated_at: number | null })
        .reauthenticated_at;
    });

  it('with the right password answers 204 and marks the session freshly authenticated', async () => {
    const owner = await signup(t.app);
    const before = await reauthenticatedAt(owner.token);
    t.clock.advance(20 * MINUTE);
    const response = await reauthenticate(owner.token, { password: GOOD_PASSWORD });
    expect(response.statusCode).toBe(204);
    const after = await reauthenticatedAt(sessionCookie(response));
    expect(after).toBe(t.clock.now().getTime());
    expect(after).not.toBe(before);
    expect(auditActions(t)).toContain('auth.reauthenticated');
  });

  /**
   * Attack: session fixation across step-up (issue 23 item 3; ASVS 7.2.4).
   * A token planted or stolen before the step-up must not gain its freshness:
   * reauthentication issues a new token and ends the old one.
   */
  it('rotates the session token: the new cookie works, the old token answers 401, lifetime and AAL carry over', async () => {
    const owner = await signup(t.app);
    const oldSession = (await me(owner.token)).json().session as { id: string; aal: number; expiresAt: string };
    t.clock.advance(20 * MINUTE);
    const response = await reauthenticate(owner.token, { password: GOOD_PASSWORD });
    expect(response.statusCode).toBe(204);
    const fresh = sessionCookie(response);
    expect(fresh).not.toBe(owner.token);
    // A cookie caller never gets the token in a header that page scripts could read.
    expect(response.headers['cleverom-session-token']).toBeUndefined();
    const old = await me(owner.token);
    expect(old.statusCode).toBe(401);
    expect(old.json().code).toBe('unauthenticated');
    const now = await me(fresh);
    expect(now.statusCode).toBe(200);
    // Reauthenticating never extends the absolute lifetime of the login.
    expect(now.json().session).toMatchObject({ aal: oldSession.aal, expiresAt: oldSession.expiresAt });
    expect((await t.app.inject({ method: 'GET', url: '/v1/me/sessions', ...asUser(fresh) })).json().sessions).toHaveLength(1);
  });

  it('gives a bearer client the new token in the Cleverom-Session-Token header; the old bearer token stops working', async () => {
    const owner = await signup(t.app);
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
    const response = await t.app.inject({ method: 'POST', url: '/v1/me/reauthenticate', headers: bearer(owner.token), payload: { password: GOOD_PASSWORD } });
    expect(response.statusCode).toBe(204);
    const next = response.headers['cleverom-session-token'];
    expect(typeof next).toBe('string');
    expect(next).toBe(sessionCookie(response));
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', headers: bearer(owner.token) })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', headers: bearer(String(next)) })).statusCode).toBe(200);
  });

  it('with a wrong password answers 401 invalid_credentials and does not refresh the session', async () => {
    const owner = await signup(t.app);
    t.clock.advance(20 * MINUTE);
    const before = await reauthenticatedAt(owner.token);
    const response = await reauthenticate(owner.token, { password: 'not the right password' });
    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe('invalid_credentials');
    expect(await reauthenticatedAt(owner.token)).toBe(before);
    expect(auditActions(t)).not.toContain('auth.reauthenticated');
    // The session itself survives a wrong password.
    expect((await me(owner.token)).statusCode).toBe(200);
  });

  /**
   * Attack: parallel guessing through step-up (issue 23 item 1). Someone
   * holding a session (a stolen cookie) guesses the password at
   * reauthentication in parallel; the same account throttle reserves each
   * attempt before argon2, so at most 5 are checked.
   */
  it('checks at most 5 of 12 parallel wrong passwords; the rest get 423 and the right one works after the lock', async () => {
    const owner = await signup(t.app);
    const responses = await Promise.all(Array.from({ length: 12 }, (_, i) => reauthenticate(owner.token, { password: `not the password ${i}` })));
    expect(responses.map((r) => r.statusCode).sort()).toEqual([...Array(5).fill(401), ...Array(7).fill(423)]);
    // The login shares the counter.
    expect((await tryLogin(owner.email, GOOD_PASSWORD)).statusCode).toBe(423);
    t.clock.advance(1000);
    expect((await reauthenticate(owner.token, { password: GOOD_PASSWORD })).statusCode).toBe(204);
    // A right password clears the counter, as a login does.
    const after = await Promise.all(Array.from({ length: 4 }, () => tryLogin(owner.email, 'not the password')));
    expect(after.map((r) => r.statusCode)).toEqual([401, 401, 401, 401]);
  });

  it.each([
    ['an empty object', {}],
    ['an unknown field', { pass: GOOD_PASSWORD }],
    ['a non-numeric code', { code: 'abcdef' }],
    ['a password of the wrong type', { password: 12345 }],
  ])('refuses %s with 400 validation_failed', async (_label, payload) => {
    const owner = await signup(t.app);
    const response = await reauthenticate(owner.token, payload);
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('validation_failed');
  });

  it('refuses an empty body with 400', async () => {
    const owner = await signup(t.app);
    const response = await reauthenticate(owner.token);
    expect(response.statusCode).toBe(400);
    expect(['malformed_body', 'validation_failed']).toContain(response.json().code);
  });

  it('needs a session', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/v1/me/reauthenticate', headers: { origin: PUBLIC_ORIGIN }, payload: { password: GOOD_PASSWORD } });
    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe('unauthenticated');
  });
});
