/**
 * Session checks are served from memory between commits (issue 9). Any
 * commit must end that: through this process (the API), revocation,
 * restriction and role changes take effect on the very next request; by
 * another connection or process (the CLI, an operator's sqlite3), from the
 * next event-loop turn on (platform/db/commit-stamp.ts, `CommitWatch`).
 */
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PUBLIC_ORIGIN, addMember, asUser, buildTestApp, signup, type SignedUp, type TestApp } from '../helpers/app.js';

let t: TestApp;
let owner: SignedUp;
let other: BetterSqlite3.Database;
beforeEach(async () => {
  t = await buildTestApp();
  owner = await signup(t.app);
  // A second connection, as another process would have.
  other = new BetterSqlite3(t.databaseFile);
  other.pragma('busy_timeout = 5000');
});
afterEach(async () => {
  other.close();
  await t.close();
});

const me = () => t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(owner.token) });
/** Let the event loop turn once, as any two requests over the network are apart. */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('session cache', () => {
  it('sees a session deleted by another connection on the next request', async () => {
    expect((await me()).statusCode).toBe(200);
    expect((await me()).statusCode).toBe(200); // served from memory
    other.prepare('DELETE FROM sessions WHERE user_id = ?').run(owner.userId);
    await nextTurn();
    expect((await me()).statusCode).toBe(401);
  });

  it('sees a restriction and a role change made by another connection', async () => {
    expect((await me()).json().user.role).toBe('owner');
    other.prepare("UPDATE users SET role = 'admin' WHERE id = ?").run(owner.userId);
    await nextTurn();
    expect((await me()).json().user.role).toBe('admin');
    other.prepare("UPDATE users SET status = 'restricted' WHERE id = ?").run(owner.userId);
    await nextTurn();
    expect((await me()).statusCode).toBe(401);
  });

  it('sees a logout through the API on the next request', async () => {
    expect((await me()).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'POST', url: '/v1/logout', ...asUser(owner.token) })).statusCode).toBe(204);
    expect((await me()).statusCode).toBe(401);
  });

  it('sees a change written by this process outside the API on the very next request', async () => {
    expect((await me()).statusCode).toBe(200);
    t.services.database.sqlite.prepare("UPDATE users SET status = 'restricted' WHERE id = ?").run(owner.userId);
    expect((await me()).statusCode).toBe(401);
  });

  it('sees a commit by another connection over a real socket', async () => {
    const url = await t.app.listen({ host: '127.0.0.1', port: 0 });
    const get = async () => (await fetch(`${url}/v1/me`, { headers: { cookie: `cleverom_session=${owner.token}` } })).status;
    expect(await get()).toBe(200);
    expect(await get()).toBe(200);
    other.prepare('DELETE FROM sessions WHERE user_id = ?').run(owner.userId);
    expect(await get()).toBe(401);
  });

  it('applies every route rule to a remembered session (the gate answers it without a database read)', async () => {
    const member = await addMember(t, owner, 'member');
    const stranger = await signup(t.app, { orgName: 'Other Oy' });
    const as = (who: SignedUp, method: 'GET' | 'DELETE', url: string, origin = true) =>
      t.app.inject({ method, url, cookies: { cleverom_session: who.token }, headers: origin ? { origin: PUBLIC_ORIGIN } : {} });
    expect((await as(member, 'GET', '/v1/me')).statusCode).toBe(200);
    expect((await as(member, 'GET', '/v1/me')).statusCode).toBe(200);
    const before = t.services.database.commitStamp();
    expect(before).not.toBeNull();
    // Role below the route's, another organization (404, never 403), no Origin on a cookie POST.
    expect((await as(member, 'GET', `/v1/orgs/${member.orgId}/audit`)).json().code).toBe('forbidden');
    expect((await as(member, 'GET', `/v1/orgs/${stranger.orgId}`)).statusCode).toBe(404);
    expect((await as(member, 'GET', `/v1/orgs/${member.orgId}`)).statusCode).toBe(200);
    expect((await as(member, 'DELETE', '/v1/me/sessions', false)).json().code).toBe('csrf_failed');
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', cookies: { cleverom_session: 'x'.repeat(43) } })).statusCode).toBe(401);
    // Nothing was written meanwhile: every answer above came from the remembered session.
    expect(t.services.database.commitStamp()).toBe(before);
  });

  it('still applies idle expiry to a remembered session', async () => {
    expect((await me()).statusCode).toBe(200);
    t.clock.advance(61 * 60 * 1000);
    expect((await me()).statusCode).toBe(401);
  });

  it('shares frozen values between requests', async () => {
    const found = await t.services.sessions.validate(owner.token);
    expect(found && Object.isFrozen(found.user) && Object.isFrozen(found.session)).toBe(true);
  });
});
