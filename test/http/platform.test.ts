import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GOOD_PASSWORD, buildTestApp, signup, type TestApp } from '../helpers/app.js';

/**
 * Health, metrics, the OpenAPI document, problem details for unknown routes
 * and unexpected errors, and security headers (API.md "Health and docs",
 * "Conventions"; SECURITY.md "errors").
 */

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

describe('health', () => {
  it('GET /healthz → 200 {"status":"ok"}', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('application/json');
    expect(response.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz → 200 while the database answers, 503 once it does not', async () => {
    const ready = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    t.services.database.close();
    const down = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(down.statusCode).toBe(503);
    // The process is still up.
    expect((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});

describe('GET /metrics', () => {
  it('serves Prometheus text with request counts, latencies and logins by outcome', async () => {
    const owner = await signup(t.app);
    await t.app.inject({ method: 'GET', url: '/healthz' });
    await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: GOOD_PASSWORD } });
    await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: 'wrong password, sorry' } });
    await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: 'wrong password, again' } });

    const response = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    const text = response.body;
    expect(text).toContain('# TYPE http_requests_total counter');
    expect(text).toMatch(/http_requests_total\{[^}]*route="\/healthz"[^}]*status="200"[^}]*\} 1\b/);
    expect(text).toMatch(/http_requests_total\{[^}]*route="\/v1\/login"[^}]*status="401"[^}]*\} 2\b/);
    expect(text).toContain('http_request_duration_seconds_bucket');
    expect(text).toContain('# TYPE logins_total counter');
    expect(text).toMatch(/logins_total\{outcome="success"\} 1\b/);
    expect(text).toMatch(/logins_total\{outcome="failure"\} 2\b/);
    // Request metrics are labelled by route pattern, never by raw URL, and never carry secrets.
    expect(text).not.toContain(owner.email);
    expect(text).not.toContain(owner.token);
  });

  it('labels routes by their pattern, so ids do not explode the label set', async () => {
    const owner = await signup(t.app);
    await t.app.inject({ method: 'GET', url: `/v1/orgs/${owner.orgId}`, cookies: { cleverom_session: owner.token } });
    const text = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toContain('route="/v1/orgs/:orgId"');
    expect(text).not.toContain(owner.orgId);
  });
});

describe('OpenAPI', () => {
  it('GET /docs/json is an OpenAPI 3 document with the public routes', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/docs/json' });
    expect(response.statusCode).toBe(200);
    const doc = response.json();
    expect(String(doc.openapi)).toMatch(/^3\./);
    expect(doc.info.title).toBeTruthy();
    for (const path of ['/v1/login', '/v1/signup', '/v1/me', '/v1/logout', '/v1/me/sessions', '/v1/password-reset', '/healthz']) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
    // The schemas that validate requests are the ones documented.
    const signupBody = doc.paths['/v1/signup'].post.requestBody.content['application/json'].schema;
    expect(signupBody.required).toEqual(expect.arrayContaining(['orgName', 'name', 'email', 'password', 'ageConfirmed']));
    expect(signupBody.properties.orgName.maxLength).toBe(200);
    expect(doc.paths['/v1/login'].post.requestBody.content['application/json'].schema.properties.email.format).toBe('email');
  });

  it('GET /docs serves the browsable UI as HTML', async () => {
    let response = await t.app.inject({ method: 'GET', url: '/docs' });
    if (response.statusCode >= 300 && response.statusCode < 400) {
      response = await t.app.inject({ method: 'GET', url: String(response.headers.location) });
    }
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('text/html');
    expect(response.body).toMatch(/<html/i);
    expect(response.body.toLowerCase()).toContain('swagger');
  });
});

describe('problem details', () => {
  it('an unknown route → 404 not_found problem+json', async () => {
    for (const [method, url] of [['GET', '/v1/nope'], ['POST', '/v1/does/not/exist'], ['DELETE', '/admin']] as const) {
      const response = await t.app.inject({ method, url });
      expect(response.statusCode).toBe(404);
      expect(response.headers['content-type']).toContain('application/problem+json');
      expect(response.json()).toMatchObject({ status: 404, code: 'not_found', type: expect.any(String), title: expect.any(String) });
    }
  });

  it('a wrong method on a known path is a problem+json too', async () => {
    const response = await t.app.inject({ method: 'PUT', url: '/v1/login' });
    expect(response.statusCode).toBeGreaterThanOrEqual(400);
    expect(response.statusCode).toBeLessThan(500);
    expect(response.headers['content-type']).toContain('application/problem+json');
  });

  it('an unexpected failure → 500 internal with a request id and no stack, SQL or paths', async () => {
    const owner = await signup(t.app);
    t.services.database.close();
    const response = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: GOOD_PASSWORD } });
    expect(response.statusCode).toBe(500);
    expect(response.headers['content-type']).toContain('application/problem+json');
    const body = response.json();
    expect(body).toMatchObject({ status: 500, code: 'internal', type: expect.any(String), title: expect.any(String) });
    expect(typeof body.requestId).toBe('string');
    expect(body.requestId.length).toBeGreaterThan(0);
    expect(body.stack).toBeUndefined();
    expect(response.body).not.toMatch(/\bat \S+ \(|\n\s+at /);
    expect(response.body).not.toMatch(/SQLITE|sqlite|SELECT|INSERT|database connection/i);
    expect(response.body).not.toContain('/work/');
    expect(response.body).not.toContain('node_modules');
    expect(response.body).not.toContain(GOOD_PASSWORD);
    // A different request gets a different id.
    const again = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: GOOD_PASSWORD } });
    expect(again.json().requestId).not.toBe(body.requestId);
  });

  it('an authenticated route with the database gone answers 500 internal, not a crash or a leak', async () => {
    const owner = await signup(t.app);
    t.services.database.close();
    const response = await t.app.inject({ method: 'GET', url: '/v1/me', cookies: { cleverom_session: owner.token } });
    expect(response.statusCode).toBe(500);
    expect(response.json().code).toBe('internal');
    expect(response.body).not.toMatch(/sqlite|\n\s+at /i);
  });
});

describe('security headers', () => {
  it('sends nosniff, a strict CSP and frame protection, and no HSTS over http', async () => {
    // (/docs carries the swagger UI's own CSP, scoped to its routes.)
    for (const url of ['/healthz', '/v1/nope', '/v1/me']) {
      const response = await t.app.inject({ method: 'GET', url });
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      const csp = String(response.headers['content-security-policy']);
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain("'unsafe-inline'");
      expect(csp).not.toContain('upgrade-insecure-requests');
      expect(response.headers['strict-transport-security']).toBeUndefined();
      expect(response.headers['x-powered-by']).toBeUndefined();
    }
  });

  it('sends the headers on error responses too', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: 'nobody@example.com' } });
    expect(response.statusCode).toBe(400);
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['content-security-policy']).toBeDefined();
  });
});

describe('referrer policy', () => {
  it('sends Referrer-Policy same-origin, so browsers keep sending Origin on same-origin form posts', async () => {
    const t = await buildTestApp();
    try {
      const response = await t.app.inject({ method: 'GET', url: '/healthz' });
      expect(response.headers['referrer-policy']).toBe('same-origin');
    } finally {
      await t.close();
    }
  });
});

describe('SSO errors in a browser', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await buildTestApp();
  });
  afterEach(async () => {
    await t.close();
  });

  it('shows an HTML page (same 400 status) to a browser, and problem+json to API clients', async () => {
    const url = '/v1/sso/oidc/callback?state=forged&code=x';
    const browser = await t.app.inject({ method: 'GET', url, headers: { accept: 'text/html,application/xhtml+xml' } });
    expect(browser.statusCode).toBe(400);
    expect(browser.headers['content-type']).toContain('text/html');
    expect(browser.body).toContain('Single sign-on did not work');
    expect(browser.body).toContain('sso_failed');
    const api = await t.app.inject({ method: 'GET', url });
    expect(api.statusCode).toBe(400);
    expect(api.json().code).toBe('sso_failed');
  });
});
