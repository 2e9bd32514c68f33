import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GOOD_PASSWORD, PUBLIC_ORIGIN, buildTestApp, signup, type SignedUp, type TestApp } from '../helpers/app.js';

/**
 * Attack: cross-site request forgery (ASVS 3.5; API.md "Conventions" CSRF).
 *
 * A page on another site makes the victim's browser send a state-changing
 * request to us; the browser attaches the victim's session cookie on its own
 * (SameSite=Lax still lets some cross-site requests through, and same-site
 * sibling hosts are not cross-site at all). The defence: a cookie-authenticated
 * POST/PUT/PATCH/DELETE must carry an `Origin` equal to the public origin, else
 * `403 csrf_failed` — and nothing happens. Bearer-authenticated requests are
 * exempt (a browser never adds an Authorization header by itself).
 *
 * Login CSRF: the attacker posts *their own* credentials to /v1/login from
 * their site so the victim ends up signed in as the attacker; unauthenticated
 * credential posts carrying a foreign Origin are refused too.
 */

const EVIL = 'https://evil.example';

let t: TestApp;
let owner: SignedUp;
beforeEach(async () => {
  t = await buildTestApp();
  owner = await signup(t.app, { orgName: 'Original Name' });
});
afterEach(async () => {
  await t.close();
});

const cookieOnly = (token: string) => ({ cookies: { cleverom_session: token } });
const withOrigin = (token: string, origin: string) => ({ cookies: { cleverom_session: token }, headers: { origin } });

const orgName = () => (t.services.database.sqlite.prepare('SELECT name FROM orgs WHERE id = ?').get(owner.orgId) as { name: string }).name;
const sessionCount = () => (t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM sessions WHERE user_id = ?').get(owner.userId) as { n: number }).n;
const meStatus = async (token: string) => (await t.app.inject({ method: 'GET', url: '/v1/me', ...cookieOnly(token) })).statusCode;

function expectCsrf(response: { statusCode: number; headers: Record<string, unknown>; json: () => unknown }): void {
  expect(response.statusCode).toBe(403);
  expect(String(response.headers['content-type'])).toContain('application/problem+json');
  expect(response.json()).toMatchObject({ status: 403, code: 'csrf_failed' });
}

/** State-changing, cookie-authenticated requests with a visible effect we can check did not happen. */
const forged = [
  {
    label: 'POST /v1/logout',
    request: { method: 'POST' as const, url: '/v1/logout' },
    unchanged: async () => expect(await meStatus(owner.token)).toBe(200),
  },
  {
    label: 'PATCH /v1/orgs/:orgId',
    request: { method: 'PATCH' as const, url: '', payload: { name: 'Pwned Org' } },
    unchanged: async () => expect(orgName()).toBe('Original Name'),
  },
  {
    label: 'DELETE /v1/me/sessions',
    request: { method: 'DELETE' as const, url: '/v1/me/sessions' },
    unchanged: async () => expect(sessionCount()).toBe(2),
  },
  {
    label: 'POST /v1/me/password',
    request: { method: 'POST' as const, url: '/v1/me/password', payload: { currentPassword: GOOD_PASSWORD, newPassword: 'attacker chosen passphrase' } },
    unchanged: async () => {
      const response = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: GOOD_PASSWORD } });
      expect(response.statusCode).toBe(200);
    },
  },
];

async function prepare(): Promise<void> {
  // A second session, so "revoke the others" would have something to revoke.
  const response = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: GOOD_PASSWORD } });
  expect(response.statusCode).toBe(200);
}

function urlOf(request: { url: string }): string {
  return request.url === '' ? `/v1/orgs/${owner.orgId}` : request.url;
}

describe('cookie-authenticated state changes', () => {
  it.each(forged)('$label without Origin → 403 csrf_failed and no effect', async ({ request, unchanged }) => {
    await prepare();
    expectCsrf(await t.app.inject({ ...request, url: urlOf(request), ...cookieOnly(owner.token) }));
    await unchanged();
  });

  it.each(forged)('$label with a foreign Origin → 403 csrf_failed and no effect', async ({ request, unchanged }) => {
    await prepare();
    expectCsrf(await t.app.inject({ ...request, url: urlOf(request), ...withOrigin(owner.token, EVIL) }));
    await unchanged();
  });

  it.each([
    ['null (sandboxed iframe, data: URL)', 'null'],
    ['https instead of http', 'https://localhost:3000'],
    ['another port', 'http://localhost:3001'],
    ['a look-alike suffix', 'http://localhost:3000.evil.example'],
    ['a subdomain', 'http://sub.localhost:3000'],
  ])('refuses an Origin that is not exactly the public origin: %s', async (_label, origin) => {
    const response = await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${owner.orgId}`, ...withOrigin(owner.token, origin), payload: { name: 'Pwned Org' } });
    expectCsrf(response);
    expect(orgName()).toBe('Original Name');
  });

  it('accepts the same requests with the public origin', async () => {
    const renamed = await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${owner.orgId}`, ...withOrigin(owner.token, PUBLIC_ORIGIN), payload: { name: 'Renamed Org' } });
    expect(renamed.statusCode).toBe(200);
    expect(orgName()).toBe('Renamed Org');

    await prepare();
    const others = await t.app.inject({ method: 'DELETE', url: '/v1/me/sessions', ...withOrigin(owner.token, PUBLIC_ORIGIN) });
    expect(others.statusCode).toBe(204);
    expect(sessionCount()).toBe(1);

    const logout = await t.app.inject({ method: 'POST', url: '/v1/logout', ...withOrigin(owner.token, PUBLIC_ORIGIN) });
    expect(logout.statusCode).toBe(204);
    expect(await meStatus(owner.token)).toBe(401);
  });

  it('a Referer from our origin does not replace the Origin header', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/v1/logout', cookies: { cleverom_session: owner.token }, headers: { referer: `${PUBLIC_ORIGIN}/settings` } });
    expectCsrf(response);
    expect(await meStatus(owner.token)).toBe(200);
  });
});

describe('Bearer-authenticated requests are exempt', () => {
  it('PATCH, DELETE and POST without Origin succeed with Authorization: Bearer', async () => {
    const auth = { headers: { authorization: `Bearer ${owner.token}` } };
    const renamed = await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${owner.orgId}`, ...auth, payload: { name: 'Via API' } });
    expect(renamed.statusCode).toBe(200);
    expect(orgName()).toBe('Via API');
    await prepare();
    expect((await t.app.inject({ method: 'DELETE', url: '/v1/me/sessions', ...auth })).statusCode).toBe(204);
    expect(sessionCount()).toBe(1);
    expect((await t.app.inject({ method: 'POST', url: '/v1/logout', ...auth })).statusCode).toBe(204);
    expect(sessionCount()).toBe(0);
  });
});

describe('login CSRF', () => {
  it('POST /v1/login with a foreign Origin → 403 csrf_failed and no session', async () => {
    const before = sessionCount();
    const response = await t.app.inject({ method: 'POST', url: '/v1/login', headers: { origin: EVIL }, payload: { email: owner.email, password: GOOD_PASSWORD } });
    expectCsrf(response);
    expect(response.cookies.find((c) => c.name === 'cleverom_session')).toBeUndefined();
    expect(sessionCount()).toBe(before);
  });

  it('POST /v1/login with the public origin, or without Origin (non-browser client), works', async () => {
    expect((await t.app.inject({ method: 'POST', url: '/v1/login', headers: { origin: PUBLIC_ORIGIN }, payload: { email: owner.email, password: GOOD_PASSWORD } })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: GOOD_PASSWORD } })).statusCode).toBe(200);
  });

  it('a foreign-origin login attempt does not count as a failed password attempt', async () => {
    for (let i = 0; i < 6; i += 1) {
      await t.app.inject({ method: 'POST', url: '/v1/login', headers: { origin: EVIL }, payload: { email: owner.email, password: 'wrong password, sorry' } });
    }
    expect((await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: GOOD_PASSWORD } })).statusCode).toBe(200);
  });

  it('POST /v1/password-reset with a foreign Origin → 403 and no mail', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/v1/password-reset', headers: { origin: EVIL }, payload: { email: owner.email } });
    expectCsrf(response);
    expect(t.outbox()).toHaveLength(0);
  });
});

describe('safe methods', () => {
  it.each([
    ['GET /v1/me', () => '/v1/me'],
    ['GET /v1/me/sessions', () => '/v1/me/sessions'],
    ['GET /v1/orgs/:orgId', () => `/v1/orgs/${owner.orgId}`],
  ])('%s never needs an Origin, and a foreign one does not matter', async (_label, url) => {
    expect((await t.app.inject({ method: 'GET', url: url(), ...cookieOnly(owner.token) })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: url(), ...withOrigin(owner.token, EVIL) })).statusCode).toBe(200);
  });
});
