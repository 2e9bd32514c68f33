import type { FastifyInstance } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';

/**
 * The headers `helmet(options)` sets on a response, computed once.
 *
 * Performance (issue 9): `@fastify/helmet` rebuilt the helmet middleware on
 * every request (re-parsing the CSP directives) in two hooks, one of them
 * async; that was about 8 % of the CPU of a `GET /v1/me`. Our options are
 * static (no nonces, no per-request directive functions), so helmet's output
 * does not depend on the request: helmet itself computes it here at boot and
 * every response gets the same headers, with the same values, as before.
 * test/http/security-headers.test.ts compares them with helmet's own middleware.
 */
type Middleware = ReturnType<typeof helmet>;

export function helmetHeaders(options: Readonly<HelmetOptions>): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader(name: string, value: unknown): void {
      if (typeof value !== 'string') throw new Error(`helmet header ${name} is not a static string`);
      headers[name.toLowerCase()] = value;
    },
    removeHeader(name: string): void {
      delete headers[name.toLowerCase()];
    },
  };
  let called = false;
  helmet(options)({} as Parameters<Middleware>[0], recorder as unknown as Parameters<Middleware>[1], (error?: unknown) => {
    if (error) throw error;
    called = true;
  });
  // helmet 8's middleware is synchronous; anything else would need per-request work.
  if (!called) throw new Error('helmet did not finish synchronously');
  return Object.freeze(headers);
}

/**
 * One synchronous `onRequest` hook that puts helmet's headers on every
 * response (errors and 404s included), and the request id, so support and
 * audit events can be matched to an answer. (One callback-style hook: each
 * hook, and an async one most, costs time on every request; issue 9.)
 *
 * `Cache-Control: no-store` is the default of every answer (ASVS 14.3.2:
 * authenticated and personal responses are not kept by browsers or shared
 * caches; RFC 9111 §5.2.2.5). Deciding per route whether an answer is
 * personal would be one more thing to forget, so only the few answers that
 * are public and the same for everyone opt out by setting their own value
 * (the stylesheet, SAML SP metadata).
 */
export function registerSecurityHeaders(app: FastifyInstance, options: Readonly<HelmetOptions>): void {
  const headers = helmetHeaders(options);
  const names = Object.keys(headers);
  app.addHook('onRequest', (request, reply, done) => {
    for (const name of names) reply.header(name, headers[name]);
    reply.header('x-request-id', request.id);
    reply.header('cache-control', 'no-store');
    done();
  });
}
