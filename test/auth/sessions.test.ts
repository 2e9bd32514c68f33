import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GOOD_PASSWORD, PUBLIC_ORIGIN, asUser, auditActions, buildTestApp, sessionCookie, signup, type TestApp } from '../helpers/app.js';

/**
 * Sessions (API.md "Sign-up, login, sessions"; SECURITY.md "session token",
 * "session lifetime"): `GET /v1/me`, the device list, revocation, logout,
 * idle (60 min) and absolute (24 h) expiry.
 */

const FIREFOX_LINUX = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
const CHROME_MAC = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';
const MINUTE = 60_000;

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
const me = (token: string) => t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(token) });

async function loginWith(email: string, userAgent: string, remoteAddress = '127.0.0.1'): Promise<string> {
  const response = await t.app.inject({
    method: 'POST',
    url: '/v1/login',
    payload: { email, password: GOOD_PASSWORD },
    headers: { 'user-agent': userAgent },
    remoteAddress,
  });
  expect(response.statusCode).toBe(200);
  return sessionCookie(response);
}

async function sessionIdOf(token: string): Promise<string> {
  const response = await me(token);
  expect(response.statusCode).toBe(200);
  return response.json().session.id as string;
}

function expectUnauthenticated(response: { statusCode: number; headers: Record<string, unknown>; json: () => unknown }): void {
  expect(response.statusCode).toBe(401);
  expect(String(response.headers['content-type'])).toContain('application/problem+json');
  expect(response.json()).toMatchObject({ status: 401, code: 'unauthenticated' });
}

describe('GET /v1/me', () => {
  it('returns the user, their organization (id, name, plan, features) and the session', async () => {
    const owner = await signup(t.app, { orgName: 'Me Corp', name: 'Mia Me' });
    const response = await me(owner.token);
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.user).toMatchObject({ id: owner.userId, email: owner.email, name: 'Mia Me', orgId: owner.orgId, role: 'owner' });
    expect(body.user.passwordHash).toBeUndefined();
    expect(body.organization).toEqual({ id: owner.orgId, name: 'Me Corp', plan: 'free', features: expect.any(Array) });
    expect(body.session).toMatchObject({ id: expect.any(String), aal: 1, authMethod: 'signup' });
    expect(new Date(body.session.expiresAt).getTime()).toBe(t.clock.now().getTime() + 24 * 60 * MINUTE);
  });

  it('answers 401 unauthenticated problem+json without a cookie', async () => {
    expectUnauthenticated(await t.app.inject({ method: 'GET', url: '/v1/me' }));
  });

  it.each([
    ['an unknown token', 'A'.repeat(43)],
    ['a too short token', 'abc'],
    ['an empty cookie', ''],
  ])('answers 401 for %s in the cookie', async (_label, token) => {
    expectUnauthenticated(await t.app.inject({ method: 'GET', url: '/v1/me', cookies: { cleverom_session: token } }));
  });

  it('does not accept the stored token hash as a token', async () => {
    await signup(t.app);
    const { token_hash } = t.services.database.sqlite.prepare('SELECT token_hash FROM sessions').get() as { token_hash: string };
    expectUnauthenticated(await t.app.inject({ method: 'GET', url: '/v1/me', cookies: { cleverom_session: token_hash } }));
    expectUnauthenticated(await t.app.inject({ method: 'GET', url: '/v1/me', ...bearer(token_hash) }));
  });

  it('accepts the session token as Authorization: Bearer', async () => {
    const owner = await signup(t.app);
    const response = await t.app.inject({ method: 'GET', url: '/v1/me', ...bearer(owner.token) });
    expect(response.statusCode).toBe(200);
    expect(response.json().user.id).toBe(owner.userId);
  });

  it.each([
    ['an unknown bearer token', `Bearer ${'B'.repeat(43)}`],
    ['a malformed Authorization header', 'Basic dXNlcjpwYXNz'],
    ['a bearer with spaces', 'Bearer a b c'],
  ])('answers 401 for %s', async (_label, authorization) => {
    expectUnauthenticated(await t.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization } }));
  });

  it('exempts Bearer-authenticated state changes from the Origin check (POST /v1/logout without Origin)', async () => {
    const owner = await signup(t.app);
    const response = await t.app.inject({ method: 'POST', url: '/v1/logout', ...bearer(owner.token) });
    expect(response.statusCode).toBe(204);
    expectUnauthenticated(await t.app.inject({ method: 'GET', url: '/v1/me', ...bearer(owner.token) }));
  });
});

describe('GET /v1/me/sessions', () => {
  it('lists every session with device, ip, method and marks the current one', async () => {
    const owner = await signup(t.app);
    t.clock.advance(5 * MINUTE);
    const firefox = await loginWith(owner.email, FIREFOX_LINUX, '203.0.113.7');
    t.clock.advance(5 * MINUTE);
    const chrome = await loginWith(owner.email, CHROME_MAC, '198.51.100.20');

    const response = await t.app.inject({ method: 'GET', url: '/v1/me/sessions', ...asUser(firefox) });
    expect(response.statusCode).toBe(200);
    const sessions = response.json().sessions as Record<string, unknown>[];
    expect(sessions).toHaveLength(3);
    for (const s of sessions) {
      expect(Object.keys(s)).toEqual(expect.arrayContaining(['id', 'current', 'createdAt', 'lastSeenAt', 'ip', 'userAgent', 'device', 'authMethod', 'aal']));
      expect(JSON.stringify(s)).not.toContain(owner.token);
    }
    const current = sessions.filter((s) => s.current);
    expect(current).toHaveLength(1);
    expect(current[0]).toMatchObject({
      id: await sessionIdOf(firefox),
      ip: '203.0.113.7',
      userAgent: FIREFOX_LINUX,
      device: 'Firefox 128 on Linux',
      authMethod: 'password',
      aal: 1,
      createdAt: new Date(Date.parse('2026-01-15T09:05:00.000Z')).toISOString(),
    });
    const other = sessions.find((s) => s.userAgent === CHROME_MAC);
    expect(other).toMatchObject({ current: false, ip: '198.51.100.20', authMethod: 'password' });
    expect(String(other?.device)).toMatch(/^Chrome 126 on (macOS|Mac OS)/);
    expect(sessions.find((s) => s.authMethod === 'signup')).toMatchObject({ current: false });
    // The list never contains tokens or their hashes.
    const all = response.body;
    expect(all).not.toContain(firefox);
    expect(all).not.toContain(chrome);
    const hashes = (t.services.database.sqlite.prepare('SELECT token_hash FROM sessions').all() as { token_hash: string }[]).map((r) => r.token_hash);
    for (const h of hashes) expect(all).not.toContain(h);
  });

  it('shows only the caller’s own sessions', async () => {
    const ann = await signup(t.app);
    const bob = await signup(t.app);
    const response = await t.app.inject({ method: 'GET', url: '/v1/me/sessions', ...asUser(ann.token) });
    const ids = (response.json().sessions as { id: string }[]).map((s) => s.id);
    expect(ids).toEqual([await sessionIdOf(ann.token)]);
    expect(ids).not.toContain(await sessionIdOf(bob.token));
  });

  it('shows an unrecognised user agent as itself and caps a huge one at 512 characters', async () => {
    const owner = await signup(t.app);
    await loginWith(owner.email, 'deploy-script/1.0');
    await loginWith(owner.email, `${FIREFOX_LINUX} ${'x'.repeat(2000)}`);
    const response = await t.app.inject({ method: 'GET', url: '/v1/me/sessions', ...asUser(owner.token) });
    const sessions = response.json().sessions as { userAgent: string; device: string }[];
    expect(sessions.find((s) => s.userAgent === 'deploy-script/1.0')?.device).toBe('deploy-script/1.0');
    const huge = sessions.find((s) => s.userAgent.startsWith(FIREFOX_LINUX));
    expect(huge?.userAgent).toHaveLength(512);
  });

  it('requires a session', async () => {
    expectUnauthenticated(await t.app.inject({ method: 'GET', url: '/v1/me/sessions' }));
  });
});

describe('DELETE /v1/me/sessions/:id', () => {
  it('signs out another device: its token stops working, the current one keeps working', async () => {
    const owner = await signup(t.app);
    const laptop = await loginWith(owner.email, FIREFOX_LINUX);
    const laptopId = await sessionIdOf(laptop);

    const response = await t.app.inject({ method: 'DELETE', url: `/v1/me/sessions/${laptopId}`, ...asUser(owner.token) });
    expect(response.statusCode).toBe(204);
    expectUnauthenticated(await me(laptop));
    expect((await me(owner.token)).statusCode).toBe(200);
    const list = await t.app.inject({ method: 'GET', url: '/v1/me/sessions', ...asUser(owner.token) });
    expect((list.json().sessions as { id: string }[]).map((s) => s.id)).not.toContain(laptopId);
    expect(auditActions(t)).toContain('session.revoked');
  });

  it("answers 404 for someone else's session id and leaves that session alive", async () => {
    const ann = await signup(t.app);
    const bob = await signup(t.app);
    const bobSession = await sessionIdOf(bob.token);
    const before = auditActions(t).length;
    const response = await t.app.inject({ method: 'DELETE', url: `/v1/me/sessions/${bobSession}`, ...asUser(ann.token) });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({ code: 'not_found' });
    expect((await me(bob.token)).statusCode).toBe(200);
    expect(auditActions(t)).toHaveLength(before);
  });

  it('answers 404 for an unknown id and 400 for a malformed one', async () => {
    const owner = await signup(t.app);
    expect((await t.app.inject({ method: 'DELETE', url: '/v1/me/sessions/does-not-exist', ...asUser(owner.token) })).statusCode).toBe(404);
    const bad = await t.app.inject({ method: 'DELETE', url: `/v1/me/sessions/${encodeURIComponent("1' OR '1'='1")}`, ...asUser(owner.token) });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('validation_failed');
    expect((await me(owner.token)).statusCode).toBe(200);
  });
});

describe('DELETE /v1/me/sessions', () => {
  it('revokes every session but the current one', async () => {
    const owner = await signup(t.app);
    const a = await loginWith(owner.email, FIREFOX_LINUX);
    const b = await loginWith(owner.email, CHROME_MAC);
    const bystander = await signup(t.app);

    const response = await t.app.inject({ method: 'DELETE', url: '/v1/me/sessions', ...asUser(a) });
    expect(response.statusCode).toBe(204);
    expect((await me(a)).statusCode).toBe(200);
    expectUnauthenticated(await me(b));
    expectUnauthenticated(await me(owner.token));
    // Another user's sessions are untouched.
    expect((await me(bystander.token)).statusCode).toBe(200);
    const list = await t.app.inject({ method: 'GET', url: '/v1/me/sessions', ...asUser(a) });
    expect(list.json().sessions).toHaveLength(1);
    expect(list.json().sessions[0].current).toBe(true);
    expect(auditActions(t)).toContain('session.revoked_others');
  });
});

describe('POST /v1/logout', () => {
  it('answers 204, clears the cookie and kills the token server-side', async () => {
    const owner = await signup(t.app);
    const other = await loginWith(owner.email, FIREFOX_LINUX);
    const response = await t.app.inject({ method: 'POST', url: '/v1/logout', ...asUser(owner.token) });
    expect(response.statusCode).toBe(204);
    expect(response.body).toBe('');
    const cleared = response.cookies.find((c) => c.name === 'cleverom_session');
    expect(cleared).toBeDefined();
    expect(cleared?.value).toBe('');
    expect(cleared?.expires === undefined ? cleared?.maxAge : cleared.expires.getTime()).toBeLessThanOrEqual(Date.now());
    expect(cleared).toMatchObject({ path: '/', httpOnly: true });

    // Replaying the old cookie does not work: the session is gone, not only the cookie.
    expectUnauthenticated(await me(owner.token));
    expectUnauthenticated(await t.app.inject({ method: 'GET', url: '/v1/me', ...bearer(owner.token) }));
    // Only this session ends.
    expect((await me(other)).statusCode).toBe(200);
    expect(auditActions(t)).toContain('auth.logout');
  });

  it('answers 401 without a session', async () => {
    expectUnauthenticated(await t.app.inject({ method: 'POST', url: '/v1/logout', headers: { origin: PUBLIC_ORIGIN } }));
  });

  it('a second logout with the same token answers 401', async () => {
    const owner = await signup(t.app);
    expect((await t.app.inject({ method: 'POST', url: '/v1/logout', ...asUser(owner.token) })).statusCode).toBe(204);
    expect((await t.app.inject({ method: 'POST', url: '/v1/logout', ...asUser(owner.token) })).statusCode).toBe(401);
  });
});

describe('session lifetime (users: idle 60 min, absolute 24 h)', () => {
  it('keeps a session alive after 59 minutes idle', async () => {
    const owner = await signup(t.app);
    t.clock.advance(59 * MINUTE);
    expect((await me(owner.token)).statusCode).toBe(200);
  });

  it('ends a session after 61 minutes idle', async () => {
    const owner = await signup(t.app);
    t.clock.advance(61 * MINUTE);
    expectUnauthenticated(await me(owner.token));
    // It stays dead once the clock would no longer matter.
    expectUnauthenticated(await me(owner.token));
  });

  it('drops an idle-expired session from the device list', async () => {
    const owner = await signup(t.app);
    t.clock.advance(30 * MINUTE);
    const fresh = await loginWith(owner.email, FIREFOX_LINUX);
    t.clock.advance(31 * MINUTE); // the sign-up session is now 61 min idle
    const list = await t.app.inject({ method: 'GET', url: '/v1/me/sessions', ...asUser(fresh) });
    expect(list.json().sessions).toHaveLength(1);
    expect(list.json().sessions[0].current).toBe(true);
  });

  it('activity keeps the session alive past the idle limit (a request every 30 min for 3 h)', async () => {
    const owner = await signup(t.app);
    for (let i = 0; i < 6; i += 1) {
      t.clock.advance(30 * MINUTE);
      expect((await me(owner.token)).statusCode).toBe(200);
    }
    const list = await t.app.inject({ method: 'GET', url: '/v1/me/sessions', ...asUser(owner.token) });
    expect(list.json().sessions[0].lastSeenAt).toBe(t.clock.now().toISOString());
  });

  it('ends even an active session at the absolute 24 h limit', async () => {
    const owner = await signup(t.app);
    const started = t.clock.now().getTime();
    while (t.clock.now().getTime() - started < 24 * 60 * MINUTE - 30 * MINUTE) {
      t.clock.advance(30 * MINUTE);
      expect((await me(owner.token)).statusCode).toBe(200);
    }
    // 23 h 30 min in: still alive; at 24 h it is over however active it was.
    t.clock.advance(30 * MINUTE);
    expectUnauthenticated(await me(owner.token));
  });

  it('an expired session does not work as a bearer token either', async () => {
    const owner = await signup(t.app);
    t.clock.advance(61 * MINUTE);
    expectUnauthenticated(await t.app.inject({ method: 'GET', url: '/v1/me', ...bearer(owner.token) }));
  });
});

describe('audit', () => {
  it('records logout, single revocation and revoke-others with the session ids, never tokens', async () => {
    const owner = await signup(t.app);
    const a = await loginWith(owner.email, FIREFOX_LINUX);
    const b = await loginWith(owner.email, CHROME_MAC);
    const c = await loginWith(owner.email, CHROME_MAC);
    const bId = await sessionIdOf(b);
    await t.app.inject({ method: 'DELETE', url: `/v1/me/sessions/${bId}`, ...asUser(a) });
    await t.app.inject({ method: 'DELETE', url: '/v1/me/sessions', ...asUser(a) });
    await t.app.inject({ method: 'POST', url: '/v1/logout', ...asUser(a) });

    const rows = t.services.database.sqlite
      .prepare("SELECT action, data FROM audit_events WHERE action IN ('session.revoked', 'session.revoked_others', 'auth.logout') ORDER BY seq")
      .all() as { action: string; data: string }[];
    expect(rows.map((r) => r.action)).toEqual(['session.revoked', 'session.revoked_others', 'auth.logout']);
    expect(rows[0]?.data).toContain(bId);
    // Two sessions were left to revoke besides the current one: the sign-up session and c.
    expect(JSON.parse(rows[1]?.data ?? '{}')).toMatchObject({ revoked: 2 });
    const everything = JSON.stringify(t.services.database.sqlite.prepare('SELECT * FROM audit_events').all());
    for (const token of [owner.token, a, b, c]) expect(everything).not.toContain(token);
  });
});
