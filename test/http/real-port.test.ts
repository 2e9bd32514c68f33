import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GOOD_PASSWORD, PUBLIC_ORIGIN, buildTestApp, uniqueEmail, type TestApp } from '../helpers/app.js';

/**
 * The same journey as a browser or API client makes, over a real TCP socket
 * (no inject): the HTTP server, cookie headers and body parsing as deployed.
 */

let t: TestApp;
let base: string;
beforeAll(async () => {
  t = await buildTestApp();
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const address = t.app.server.address() as AddressInfo;
  base = `http://127.0.0.1:${address.port}`;
});
afterAll(async () => {
  await t.close();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked field by field below
const json = async (response: Response): Promise<any> => response.json();

/** `name=value` of the session cookie from a fetch response. */
function sessionFrom(response: Response): { pair: string; attributes: string } {
  const header = response.headers.getSetCookie().find((c) => c.startsWith('cleverom_session='));
  if (!header) throw new Error(`no session cookie (status ${response.status})`);
  const [pair = '', ...attributes] = header.split(';').map((p) => p.trim());
  return { pair, attributes: attributes.join('; ') };
}

describe('over a real port', () => {
  it('signs up, logs in, reads /v1/me with the cookie and logs out', async () => {
    const email = uniqueEmail('wire');

    const signup = await fetch(`${base}/v1/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: PUBLIC_ORIGIN },
      body: JSON.stringify({ orgName: 'Wire Oy', name: 'Wanda Wire', email, password: GOOD_PASSWORD, ageConfirmed: true }),
    });
    expect(signup.status).toBe(201);
    expect((await json(signup)).organization).toMatchObject({ name: 'Wire Oy', plan: 'free' });
    expect(sessionFrom(signup).attributes).toMatch(/HttpOnly/i);

    const login = await fetch(`${base}/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: PUBLIC_ORIGIN, 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' },
      body: JSON.stringify({ email, password: GOOD_PASSWORD }),
    });
    expect(login.status).toBe(200);
    const loginBody = await json(login);
    expect(loginBody.session).toMatchObject({ aal: 1 });
    const { pair, attributes } = sessionFrom(login);
    expect(attributes).toMatch(/HttpOnly/i);
    expect(attributes).toMatch(/SameSite=Lax/i);
    expect(attributes).toMatch(/Path=\//);

    const me = await fetch(`${base}/v1/me`, { headers: { cookie: pair } });
    expect(me.status).toBe(200);
    const meBody = await json(me);
    expect(meBody.user.email).toBe(email);
    expect(meBody.session.id).toBe(loginBody.session.id);

    // The session list sees the real client address of the socket.
    const sessions = await fetch(`${base}/v1/me/sessions`, { headers: { cookie: pair } });
    const current = (await json(sessions)).sessions.find((s: { current: boolean }) => s.current);
    expect(current).toMatchObject({ ip: '127.0.0.1', device: 'Firefox 128 on Linux' });

    // Without the Origin a cookie-authenticated logout is refused (CSRF).
    const forged = await fetch(`${base}/v1/logout`, { method: 'POST', headers: { cookie: pair } });
    expect(forged.status).toBe(403);
    expect(forged.headers.get('content-type')).toContain('application/problem+json');

    const logout = await fetch(`${base}/v1/logout`, { method: 'POST', headers: { cookie: pair, origin: PUBLIC_ORIGIN } });
    expect(logout.status).toBe(204);
    expect(logout.headers.getSetCookie().some((c) => /^cleverom_session=;/.test(c))).toBe(true);

    const after = await fetch(`${base}/v1/me`, { headers: { cookie: pair } });
    expect(after.status).toBe(401);
    expect((await json(after)).code).toBe('unauthenticated');
  });

  it('answers problem+json for a malformed body over the wire', async () => {
    const response = await fetch(`${base}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"email":' });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect((await json(response)).code).toBe('malformed_body');
  });

  it('answers 413 for a body over 64 KiB over the wire', async () => {
    const response = await fetch(`${base}/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'a@example.com', password: 'x'.repeat(70 * 1024) }),
    });
    expect(response.status).toBe(413);
    expect((await json(response)).code).toBe('payload_too_large');
  });
});
