/**
 * helmet's headers computed once at boot (issue 9) must equal what helmet's
 * own middleware sets on a real response, and reach every answer.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import helmet, { type HelmetOptions } from 'helmet';
import { afterEach, describe, expect, it } from 'vitest';
import { helmetHeaders } from '../../src/http/security-headers.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

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
