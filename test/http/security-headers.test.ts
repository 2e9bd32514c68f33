/**
 * helmet's headers computed once at boot (issue 9) must equal what helmet's
 * own middleware sets on a real response, and reach every answer.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import helmet, { type HelmetOptions } from 'helmet';
import { afterEach, describe, expect, it } from 'vitest';
import { helmetHeaders } from '../../src/http/security-headers.js';
import { asUser, buildTestApp, signup, type TestApp } from '../helpers/app.js';

function helmetOnRealResponse(options: HelmetOptions): Record<string, unknown> {
  const request = new IncomingMessage(new Socket());
  const response = new ServerResponse(request);
  helmet(options)(request, response, () => undefined);
  return response.getHeaders();
}

const APP_LIKE = (secure: boolean): HelmetOptions => ({
  contentSecurityPolicy: {
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      frameAncestors: ["'none'"],
      formAction: ["'self'"],
      upgradeInsecureRequests: secure ? [] : null,
    },
  },
  hsts: secure ? { maxAge: 31_536_000, includeSubDomains: true } : false,
  referrerPolicy: { policy: 'same-origin' },
});

describe('helmetHeaders', () => {
  it.each([
    ['defaults', {}],
    ['the app over https', APP_LIKE(true)],
    ['the app over http', APP_LIKE(false)],
  ] as const)('equals helmet on a real response: %s', (_name, options) => {
    expect(helmetHeaders(options)).toEqual(helmetOnRealResponse(options));
  });
});

describe('security headers on answers', () => {
  let t: TestApp;
  afterEach(async () => {
    await t.close();
  });

  it('are on a 200, a 401 and a 404, with the values helmet computes', async () => {
    t = await buildTestApp();
    const expected = helmetOnRealResponse(APP_LIKE(false));
    for (const [url, status] of [['/healthz', 200], ['/v1/me', 401], ['/no/such/route', 404]] as const) {
      const response = await t.app.inject({ url });
      expect(response.statusCode).toBe(status);
      for (const [name, value] of Object.entries(expected)) expect(response.headers[name], `${url} ${name}`).toBe(value);
      expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

/**
 * ASVS 14.3.2 / RFC 9111: authenticated answers and answers carrying
 * personal data must not be stored by a browser or a shared cache. Attack
 * covered: the next user of a shared computer (or a misconfigured proxy)
 * reading someone's /v1/me, export or account page from the cache.
 */
describe('Cache-Control', () => {
  let t: TestApp;
  afterEach(async () => {
    await t.close();
  });

  it('is no-store on authenticated JSON, the export, a page, errors and health', async () => {
    t = await buildTestApp();
    const owner = await signup(t.app);
    const cases: [string, number][] = [
      ['/v1/me', 200],
      ['/v1/me/export', 200],
      ['/v1/me/sessions', 200],
      ['/account', 200],
    ];
    for (const [url, status] of cases) {
      const response = await t.app.inject({ url, ...asUser(owner.token) });
      expect(response.statusCode, url).toBe(status);
      expect(response.headers['cache-control'], url).toBe('no-store');
    }
    for (const url of ['/v1/me', '/healthz', '/no/such/route']) {
      expect((await t.app.inject({ url })).headers['cache-control'], url).toBe('no-store');
    }
  });

  it('lets public, identical-for-everyone answers keep their own caching', async () => {
    t = await buildTestApp();
    const css = await t.app.inject({ url: '/assets/site.css' });
    expect(css.statusCode).toBe(200);
    expect(css.headers['cache-control']).toBe('public, max-age=3600');
  });
});
