/**
 * Text at the edge (src/http/text.ts). Attacks covered: bytes that are not
 * UTF-8, and unpaired UTF-16 surrogates (`"\ud800"` in JSON), sent to be
 * stored — silently "repaired" into U+FFFD, or kept and breaking later
 * steps (a 500 from the staff domain-verification reason). Every body,
 * form, query string and path must be valid Unicode, or the request is
 * `400 validation_failed` and nothing is written.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GOOD_PASSWORD, PUBLIC_ORIGIN, asUser, buildTestApp, sessionCookie, signup, uniqueEmail, type SignedUp, type TestApp } from '../helpers/app.js';
import { bearer, createStaff } from '../helpers/staff.js';
import { makeEnterprise } from '../helpers/totp.js';

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

const json = { 'content-type': 'application/json' };
/** `{"name":"Ann<FF FE>Owner"}`-style raw bytes: not UTF-8. */
const withBadBytes = (before: string, after: string): Buffer => Buffer.concat([Buffer.from(before), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(after)]);
const usersWithEmail = (email: string): number =>
  (t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM users WHERE email = ?').get(email) as { n: number }).n;
const nameOf = (user: SignedUp): string => (t.services.database.sqlite.prepare('SELECT name FROM users WHERE id = ?').get(user.userId) as { name: string }).name;

function expectRefused(response: { statusCode: number; body: string; headers: Record<string, unknown> }, field: string): void {
  expect(response.statusCode, response.body).toBe(400);
  expect(String(response.headers['content-type'])).toContain('application/problem+json');
  expect(JSON.parse(response.body)).toMatchObject({ code: 'validation_failed', errors: [expect.objectContaining({ field })] });
}

describe('JSON bodies', () => {
  it('sign-up with bytes that are not UTF-8 is refused and creates nothing', async () => {
    const email = uniqueEmail('bytes');
    const payload = withBadBytes(`{"orgName":"Bytes Oy","name":"Ann`, `Owner","email":"${email}","password":"${GOOD_PASSWORD}","ageConfirmed":true}`);
    expectRefused(await t.app.inject({ method: 'POST', url: '/v1/signup', headers: json, payload }), 'body');
    expect(usersWithEmail(email)).toBe(0);
  });

  it('sign-up with an unpaired surrogate in the name is refused, naming the field, and creates nothing', async () => {
    const email = uniqueEmail('surrogate');
    const payload = `{"orgName":"Surrogate Oy","name":"Ann \\ud800 Owner","email":"${email}","password":"${GOOD_PASSWORD}","ageConfirmed":true}`;
    expectRefused(await t.app.inject({ method: 'POST', url: '/v1/signup', headers: json, payload }), 'name');
    expect(usersWithEmail(email)).toBe(0);
  });

  it('PATCH /v1/me refuses both, and the name stays as it was', async () => {
    const owner = await signup(t.app, { name: 'Ann Owner' });
    const patch = (payload: string | Buffer) =>
      t.app.inject({ method: 'PATCH', url: '/v1/me', ...asUser(owner.token), headers: { ...asUser(owner.token).headers, ...json }, payload });
    expectRefused(await patch(withBadBytes('{"name":"Ann', ' Other"}')), 'body');
    expectRefused(await patch('{"name":"Ann \\udfff Other"}'), 'name');
    expect(nameOf(owner)).toBe('Ann Owner');
  });

  it('finds an unpaired surrogate in a nested value or a key', async () => {
    const owner = await signup(t.app);
    const send = (payload: string) =>
      t.app.inject({ method: 'PATCH', url: '/v1/me', ...asUser(owner.token), headers: { ...asUser(owner.token).headers, ...json }, payload });
    expectRefused(await send('{"name":"Ann","extra":{"list":["ok","\\ud83d"]}}'), 'extra.list.1');
    expectRefused(await send('{"name":"Ann","\\udc00":1}'), '\udc00');
  });

  it('keeps valid text byte for byte: accents, a surrogate pair escaped or not, U+FFFD itself', async () => {
    const owner = await signup(t.app);
    const name = 'Jürgen Ñandú 😀 \ufffd';
    const response = await t.app.inject({
      method: 'PATCH',
      url: '/v1/me',
      ...asUser(owner.token),
      headers: { ...asUser(owner.token).headers, 'content-type': 'application/json; charset=utf-8' },
      payload: `{"name":"Jürgen Ñandú \\ud83d\\ude00 \uFFFD"}`,
    });
    expect(response.statusCode, response.body).toBe(200);
    expect(nameOf(owner)).toBe(name);
  });

  it('still answers malformed_body for unparsable or empty JSON', async () => {
    for (const payload of ['{"name":', '']) {
      const response = await t.app.inject({ method: 'POST', url: '/v1/login', headers: json, payload });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ code: 'malformed_body' });
    }
  });

  it('the staff manual domain-verification reason: 400, not 500, and nothing verified', async () => {
    const customer = await signup(t.app);
    await makeEnterprise(t, customer.orgId);
    const claim = await t.app.inject({ method: 'POST', url: `/v1/orgs/${customer.orgId}/domains`, ...asUser(customer.token), payload: { domain: 'acme.example' } });
    expect(claim.statusCode).toBe(201);
    const admin = await createStaff(t, 'security_admin');
    const response = await t.app.inject({
      method: 'POST',
      url: `/v1/staff/orgs/${customer.orgId}/domains/acme.example/verify`,
      headers: { ...bearer(admin.token).headers, ...json },
      payload: '{"reason":"DNS outage \\ud800 ticket SUP-9"}',
    });
    expectRefused(response, 'reason');
    const list = await t.app.inject({ method: 'GET', url: `/v1/orgs/${customer.orgId}/domains`, ...asUser(customer.token) });
    expect(list.json().domains[0]).toMatchObject({ verified: false });
  });
});

describe('query strings and paths', () => {
  it('a query escape that is not UTF-8 is refused (it was kept as the text "%FF")', async () => {
    const owner = await signup(t.app);
    for (const query of ['x=%FF', 'x=%ED%A0%80', 'ok=1&x=%C3']) {
      expectRefused(await t.app.inject({ method: 'GET', url: `/v1/me?${query}`, ...asUser(owner.token) }), 'querystring');
    }
    // A literal percent sign and valid escapes are fine.
    expect((await t.app.inject({ method: 'GET', url: '/v1/me?x=100%&y=%C3%BC%F0%9F%98%80', ...asUser(owner.token) })).statusCode).toBe(200);
  });

  it('a path escape that is not UTF-8 is refused as problem+json', async () => {
    const owner = await signup(t.app);
    expectRefused(await t.app.inject({ method: 'GET', url: `/v1/orgs/${owner.orgId}/members/%FF`, ...asUser(owner.token) }), 'params');
  });
});

describe('the SAML ACS form', () => {
  it('refuses a RelayState escape that is not UTF-8 before anything else', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/v1/sso/saml/01900000-0000-7000-8000-000000000000/acs',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'SAMLResponse=PHNhbWw%2B&RelayState=%FF',
    });
    expectRefused(response, 'body');
  });
});

describe('page forms', () => {
  /** The sign-up page's CSRF cookie and token, as a browser holds them. */
  async function signupForm(): Promise<{ cookies: Record<string, string>; csrf: string }> {
    const page = await t.app.inject({ method: 'GET', url: '/signup' });
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1] ?? '';
    const cookies = Object.fromEntries(page.cookies.map((c) => [c.name, c.value]));
    return { cookies, csrf };
  }

  it.each([
    ['a percent escape that is not UTF-8', (email: string, csrf: string) => `_csrf=${encodeURIComponent(csrf)}&orgName=Form+Oy&name=Ann%FFOwner&email=${encodeURIComponent(email)}&password=${encodeURIComponent(GOOD_PASSWORD)}&ageConfirmed=yes`],
    ['raw bytes that are not UTF-8', (email: string, csrf: string) => withBadBytes(`_csrf=${encodeURIComponent(csrf)}&orgName=Form+Oy&name=Ann`, `Owner&email=${encodeURIComponent(email)}&password=${encodeURIComponent(GOOD_PASSWORD)}&ageConfirmed=yes`)],
  ] as const)('sign-up with %s: a 400 page, no account', async (_label, body) => {
    const { cookies, csrf } = await signupForm();
    const email = uniqueEmail('form');
    const response = await t.app.inject({
      method: 'POST',
      url: '/signup',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: PUBLIC_ORIGIN },
      cookies,
      payload: body(email, csrf),
    });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toContain('text/html');
    expect(usersWithEmail(email)).toBe(0);
  });

  it('a valid form still signs up', async () => {
    const { cookies, csrf } = await signupForm();
    const email = uniqueEmail('form');
    const response = await t.app.inject({
      method: 'POST',
      url: '/signup',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: PUBLIC_ORIGIN },
      cookies,
      payload: new URLSearchParams({ _csrf: csrf, orgName: 'Form Oy', name: 'Ännä Öwner 😀', email, password: GOOD_PASSWORD, ageConfirmed: 'yes' }).toString(),
    });
    expect(response.statusCode, response.body).toBe(303);
    expect(sessionCookie(response)).toBeTruthy();
    expect((t.services.database.sqlite.prepare('SELECT name FROM users WHERE email = ?').get(email) as { name: string }).name).toBe('Ännä Öwner 😀');
  });
});
