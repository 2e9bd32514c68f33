import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addMember, asUser, buildTestApp, signup, uniqueEmail, type TestApp } from '../helpers/app.js';

/**
 * Attack: credential stuffing and password spraying from one address across
 * many accounts (the per-account lock does not see it). Credential-taking
 * routes are limited per IP (`RATE_LIMIT_PER_IP_PER_MINUTE`, API.md
 * "Conventions"/"Configuration"): `429 rate_limited` with `Retry-After`.
 */

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp({ env: { RATE_LIMIT_PER_IP_PER_MINUTE: '3' } });
});
afterEach(async () => {
  await t.close();
});

/** Each attempt uses a different account, so only the per-IP limit can stop it. */
const attempt = (remoteAddress = '127.0.0.1') =>
  t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: uniqueEmail('spray'), password: 'Summer2026 is my password' }, remoteAddress });

describe('per-IP limit on credential routes', () => {
  it('counts each route on its own: exhausting login leaves password reset available', async () => {
    for (let i = 0; i < 4; i += 1) await attempt();
    expect((await attempt()).statusCode).toBe(429);
    const reset = await t.app.inject({ method: 'POST', url: '/v1/password-reset', payload: { email: uniqueEmail('someone') } });
    expect(reset.statusCode).toBe(202);
  });

  it('refuses the 4th login in a minute with 429 rate_limited and Retry-After', async () => {
    for (let i = 0; i < 3; i += 1) expect((await attempt()).statusCode).toBe(401);
    const limited = await attempt();
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['content-type']).toContain('application/problem+json');
    expect(limited.json()).toMatchObject({ status: 429, code: 'rate_limited' });
    const retryAfter = Number(limited.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
  });

  it('does not run the password check for a limited request (no argon2 work, no audit row)', async () => {
    for (let i = 0; i < 3; i += 1) await attempt();
    const before = (t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM audit_events').get() as { n: number }).n;
    expect((await attempt()).statusCode).toBe(429);
    const after = (t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM audit_events').get() as { n: number }).n;
    expect(after).toBe(before);
  });

  it('Retry-After counts down with the window', async () => {
    for (let i = 0; i < 3; i += 1) await attempt();
    t.clock.advance(40_000);
    const limited = await attempt();
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(20);
  });

  it('allows requests again once the minute has passed', async () => {
    for (let i = 0; i < 3; i += 1) await attempt();
    expect((await attempt()).statusCode).toBe(429);
    t.clock.advance(61_000);
    expect((await attempt()).statusCode).toBe(401);
  });

  it('slides: a budget spent at the end of one minute is not renewed at the start of the next', async () => {
    await attempt();
    t.clock.advance(30_000);
    expect((await attempt()).statusCode).toBe(401);
    expect((await attempt()).statusCode).toBe(401);
    // 31 s later the first attempt has left the window; the two at 30 s have not.
    t.clock.advance(31_000);
    expect((await attempt()).statusCode).toBe(401);
    const limited = await attempt();
    expect(limited.statusCode).toBe(429);
    // One more fits once the attempts made at 30 s are a minute old: at 90 s, 29 s from now.
    expect(Number(limited.headers['retry-after'])).toBe(29);
    t.clock.advance(29_000);
    expect((await attempt()).statusCode).toBe(401);
  });

  it('does not count refused requests: knocking on does not extend the wait', async () => {
    for (let i = 0; i < 3; i += 1) await attempt();
    for (let i = 0; i < 5; i += 1) {
      t.clock.advance(10_000);
      expect((await attempt()).statusCode).toBe(429);
    }
    t.clock.advance(10_001);
    expect((await attempt()).statusCode).toBe(401);
  });

  it("forgets the addresses of an erased person (their IPs do not outlive the account)", async () => {
    const owner = await signup(t.app);
    const member = await addMember(t, owner, 'member');
    const address = '203.0.113.7';
    const login = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: member.email, password: member.password }, remoteAddress: address });
    expect(login.statusCode).toBe(200);
    const rows = () => t.services.database.sqlite.prepare("SELECT count(*) AS n FROM rate_limit_log WHERE key LIKE '%|ip:' || ?").get(address) as { n: number };
    expect(rows().n).toBe(1);
    const removed = await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${owner.orgId}/members/${member.userId}`, ...asUser(owner.token) });
    expect(removed.statusCode).toBe(204);
    expect(rows().n).toBe(0);
  });

  it('counts per client address: another IP is not limited', async () => {
    for (let i = 0; i < 3; i += 1) await attempt('203.0.113.1');
    expect((await attempt('203.0.113.1')).statusCode).toBe(429);
    expect((await attempt('203.0.113.2')).statusCode).toBe(401);
  });

  it('ignores a spoofed X-Forwarded-For when TRUST_PROXY is off', async () => {
    for (let i = 0; i < 3; i += 1) {
      await t.app.inject({ method: 'POST', url: '/v1/login', headers: { 'x-forwarded-for': `198.51.100.${i}` }, payload: { email: uniqueEmail('x'), password: 'Summer2026 is my password' } });
    }
    const spoofed = await t.app.inject({ method: 'POST', url: '/v1/login', headers: { 'x-forwarded-for': '198.51.100.99' }, payload: { email: uniqueEmail('x'), password: 'Summer2026 is my password' } });
    expect(spoofed.statusCode).toBe(429);
  });

  it.each([
    ['POST /v1/password-reset', { method: 'POST' as const, url: '/v1/password-reset', payload: { email: 'someone@example.com' } }, 202],
    [
      'POST /v1/signup',
      { method: 'POST' as const, url: '/v1/signup', payload: { orgName: 'Org', name: 'N', email: 'x@example.com', password: 'plum quarry six', ageConfirmed: false } },
      400,
    ],
  ])('limits %s as well', async (_label, request, normalStatus) => {
    for (let i = 0; i < 3; i += 1) expect((await t.app.inject(request)).statusCode).toBe(normalStatus);
    const limited = await t.app.inject(request);
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['retry-after']).toBeDefined();
  });
});

describe('routes that take no credentials', () => {
  it('GET /healthz is not limited', async () => {
    for (let i = 0; i < 3; i += 1) await attempt();
    for (let i = 0; i < 10; i += 1) {
      const response = await t.app.inject({ method: 'GET', url: '/healthz' });
      expect(response.statusCode).toBe(200);
      expect(response.headers['retry-after']).toBeUndefined();
    }
  });
});
