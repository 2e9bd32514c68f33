/**
 * Attacks on the OIDC login flow, through the real app against a real
 * OpenID Provider: CSRF / login fixation through `state`, replay of a
 * callback, IdP mix-up (RFC 9207 `iss`, a response meant for another
 * connection), an expired or abandoned transaction, logins through a
 * disabled connection or after a plan downgrade, open redirects through
 * `returnTo`, and IdP confusion across tenants (org B's IdP asserting an
 * org A user's email).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { asUser, signup, type SignedUp } from '../helpers/app.js';
import { TestOidcProvider } from '../helpers/oidc-provider.js';
import {
  authorizeAtIdp, buildSsoTestApp, createdConnection, deliverCallback, enterpriseOwner, lastSsoFailureReason, sessionFrom, ssoLogin, startSso, verifyDomain,
  type SsoTestApp,
} from '../helpers/sso.js';

let idp: TestOidcProvider;
let otherIdp: TestOidcProvider;
let t: SsoTestApp;
let owner: SignedUp;
let connectionId: string;

beforeAll(async () => {
  [idp, otherIdp] = await Promise.all([TestOidcProvider.start(), TestOidcProvider.start()]);
});
afterAll(async () => {
  await Promise.all([idp.close(), otherIdp.close()]);
});
beforeEach(async () => {
  t = await buildSsoTestApp();
  owner = await enterpriseOwner(t, { email: 'owner@acme.test' });
  await verifyDomain(t, owner, 'acme.test');
  const client = idp.client(0);
  ({ id: connectionId } = await createdConnection(t, owner, { issuer: idp.issuer, clientId: client.clientId, clientSecret: client.clientSecret, domains: ['acme.test'] }));
  idp.accounts.set('alice-sub', { email: 'alice@acme.test', email_verified: true });
  idp.loginAs = 'alice-sub';
});
afterEach(async () => {
  await t.close();
});

function expectSsoFailed(response: { statusCode: number; json(): unknown; cookies: { name: string }[]; headers: Record<string, unknown> }, reason: string): void {
  expect(response.statusCode).toBe(400);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(response.json()).toMatchObject({ code: 'sso_failed', status: 400 });
  expect(response.cookies.some((c) => c.name === 'cleverom_session')).toBe(false);
  expect(lastSsoFailureReason(t)).toBe(reason);
}

function withParam(url: URL, name: string, value: string | null): URL {
  const copy = new URL(url);
  if (value === null) copy.searchParams.delete(name);
  else copy.searchParams.set(name, value);
  return copy;
}

describe('state', () => {
  /** CSRF: a callback whose state we never issued is refused (RFC 6749 §10.12). */
  it('refuses a tampered state', async () => {
    const started = await startSso(t, { connectionId });
    const callbackUrl = await authorizeAtIdp(started.location);
    const state = callbackUrl.searchParams.get('state') ?? '';
    const tampered = withParam(callbackUrl, 'state', `${state.slice(0, -1)}${state.endsWith('A') ? 'B' : 'A'}`);
    expectSsoFailed(await deliverCallback(t, tampered, started.ssoCookie), 'state_unknown');
  });

  it('refuses a callback without state', async () => {
    const started = await startSso(t, { connectionId });
    const callbackUrl = await authorizeAtIdp(started.location);
    expectSsoFailed(await deliverCallback(t, withParam(callbackUrl, 'state', null), started.ssoCookie), 'state_missing');
  });

  /** Replay: a successful callback URL (from history, logs, a proxy) cannot log in a second time. */
  it('refuses a replayed callback: the state is single-use', async () => {
    const round = await ssoLogin(t, { connectionId });
    expect(round.callback.statusCode).toBe(302);
    expectSsoFailed(await deliverCallback(t, round.callbackUrl, round.ssoCookie), 'state_reused');
  });

  /** A state is spent even by a failed attempt: a second try with it is a replay. */
  it('consumes the state on the first attempt, even a failed one', async () => {
    const started = await startSso(t, { connectionId });
    const callbackUrl = await authorizeAtIdp(started.location);
    expectSsoFailed(await deliverCallback(t, withParam(callbackUrl, 'iss', 'https://evil.example'), started.ssoCookie), 'iss_mismatch');
    expectSsoFailed(await deliverCallback(t, callbackUrl, started.ssoCookie), 'state_reused');
  });

  /**
   * Login CSRF / session injection (RFC 9700 §4.7.1): an attacker starts a
   * login, stops before the callback and makes the victim's browser open it.
   * Without the binding cookie of the browser that started it, it fails.
   */
  it.each([
    ['no binding cookie', undefined],
    ["another browser's binding cookie", 'A'.repeat(43)],
  ])('refuses a callback carrying %s', async (_label, cookie) => {
    const started = await startSso(t, { connectionId });
    const callbackUrl = await authorizeAtIdp(started.location);
    expectSsoFailed(await deliverCallback(t, callbackUrl, cookie), 'browser_mismatch');
  });

  it('keeps two sign-ins of one browser apart (one binding value per browser)', async () => {
    const first = await startSso(t, { connectionId });
    const second = await startSso(t, { connectionId }, first.ssoCookie);
    expect(second.ssoCookie).toBe(first.ssoCookie);
    const firstCallback = await authorizeAtIdp(first.location);
    expect((await deliverCallback(t, firstCallback, first.ssoCookie)).statusCode).toBe(302);
  });
});

describe('expiry (10 minutes)', () => {
  /** An abandoned login cannot be completed later (stolen or stale authorization responses). */
  it('refuses a callback after the transaction expired', async () => {
    const started = await startSso(t, { connectionId });
    t.clock.advance(10 * 60_000 + 1);
    const callbackUrl = await authorizeAtIdp(started.location);
    const response = await deliverCallback(t, callbackUrl, started.ssoCookie);
    expectSsoFailed(response, 'transaction_expired');
    expect(response.json().detail).toBe('The sign-in attempt expired. Start again.');
  });

  it('still accepts it just before', async () => {
    const started = await startSso(t, { connectionId });
    t.clock.advance(9 * 60_000);
    const callbackUrl = await authorizeAtIdp(started.location);
    expect((await deliverCallback(t, callbackUrl, started.ssoCookie)).statusCode).toBe(302);
  });
});

describe('issuer mix-up (RFC 9207)', () => {
  /** The provider advertises authorization_response_iss_parameter_supported; a different iss is refused. */
  it('refuses an iss parameter that is not the connection issuer', async () => {
    const started = await startSso(t, { connectionId });
    const callbackUrl = await authorizeAtIdp(started.location);
    expect(callbackUrl.searchParams.get('iss')).toBe(idp.issuer);
    expectSsoFailed(await deliverCallback(t, withParam(callbackUrl, 'iss', otherIdp.issuer), started.ssoCookie), 'iss_mismatch');
  });

  it('refuses a missing iss when the provider advertises it', async () => {
    const started = await startSso(t, { connectionId });
    const callbackUrl = await authorizeAtIdp(started.location);
    expectSsoFailed(await deliverCallback(t, withParam(callbackUrl, 'iss', null), started.ssoCookie), 'iss_missing');
  });

  /**
   * Mix-up: the authorization response of another connection (another IdP)
   * is delivered with this login's state. Its `iss` gives it away; with a
   * forged `iss` the code is not redeemable at this connection's IdP.
   */
  it('refuses an authorization response meant for another connection', async () => {
    const other = await enterpriseOwner(t, { email: 'owner@other.test' });
    await verifyDomain(t, other, 'other.test');
    const otherClient = otherIdp.client(0);
    const { id: otherConnection } = await createdConnection(t, other, {
      issuer: otherIdp.issuer, clientId: otherClient.clientId, clientSecret: otherClient.clientSecret, domains: ['other.test'],
    });
    otherIdp.accounts.set('mallory', { email: 'mallory@other.test', email_verified: true });
    otherIdp.loginAs = 'mallory';

    const mine = await startSso(t, { connectionId });
    const theirs = await startSso(t, { connectionId: otherConnection }, mine.ssoCookie);
    const theirCallback = await authorizeAtIdp(theirs.location);
    const myState = new URL(mine.location).searchParams.get('state') ?? '';
    expectSsoFailed(await deliverCallback(t, withParam(theirCallback, 'state', myState), mine.ssoCookie), 'iss_mismatch');

    const again = await startSso(t, { connectionId }, mine.ssoCookie);
    const againState = new URL(again.location).searchParams.get('state') ?? '';
    const forged = withParam(withParam(theirCallback, 'state', againState), 'iss', idp.issuer);
    expectSsoFailed(await deliverCallback(t, forged, mine.ssoCookie), 'token_exchange_failed');
  });

  it('refuses a code issued to another client of the same IdP', async () => {
    const other = await enterpriseOwner(t, { email: 'owner@beta.test' });
    await verifyDomain(t, other, 'beta.test');
    const client2 = idp.client(1);
    const { id: secondConnection } = await createdConnection(t, other, { issuer: idp.issuer, clientId: client2.clientId, clientSecret: client2.clientSecret, domains: ['beta.test'] });
    const mine = await startSso(t, { connectionId });
    const theirs = await startSso(t, { connectionId: secondConnection }, mine.ssoCookie);
    const theirCallback = await authorizeAtIdp(theirs.location);
    const myState = new URL(mine.location).searchParams.get('state') ?? '';
    expectSsoFailed(await deliverCallback(t, withParam(theirCallback, 'state', myState), mine.ssoCookie), 'token_exchange_failed');
  });
});

describe('inactive connections', () => {
  it('refuses a login through a connection disabled after the login started, and no longer starts one', async () => {
    const started = await startSso(t, { connectionId });
    const disable = await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${owner.orgId}/sso/connections/${connectionId}`, ...asUser(owner.token), payload: { enabled: false } });
    expect(disable.statusCode, disable.body).toBe(200);
    const callbackUrl = await authorizeAtIdp(started.location);
    expectSsoFailed(await deliverCallback(t, callbackUrl, started.ssoCookie), 'connection_disabled');
    expect((await startSso(t, { connectionId })).response.statusCode).toBe(404);
    expect((await startSso(t, { email: 'alice@acme.test' })).response.statusCode).toBe(404);
  });

  /** API.md: after a downgrade from Enterprise, SSO connections become inactive. */
  it('refuses SSO for an organization downgraded off the sso feature', async () => {
    const started = await startSso(t, { connectionId });
    await t.services.orgs.setPlan(owner.orgId, 'pro', { type: 'system', id: null });
    const callbackUrl = await authorizeAtIdp(started.location);
    expectSsoFailed(await deliverCallback(t, callbackUrl, started.ssoCookie), 'plan_lacks_sso');
    expect((await startSso(t, { connectionId })).response.statusCode).toBe(404);
    // Back on enterprise, the same connection works again.
    await t.services.orgs.setPlan(owner.orgId, 'enterprise', { type: 'system', id: null });
    expect((await ssoLogin(t, { connectionId })).callback.statusCode).toBe(302);
  });
});

describe('open redirect through returnTo (SECURITY.md: redirects)', () => {
  it.each([
    ['an absolute URL', 'https://evil.example/'],
    ['a protocol-relative URL', '//evil.example/path'],
    ['a backslash authority', '/\\evil.example'],
    ['a backslash anywhere', '/a\\b'],
    ['a leading backslash', '\\\\evil.example'],
    ['a javascript: URL', 'javascript:alert(1)'],
    ['a relative path without /', 'account'],
    ['a tab that browsers strip (/\\t/evil)', '/\t/evil.example'],
    ['a newline', '/\n/evil.example'],
    ['a scheme with a path', 'http:/evil.example'],
  ])('refuses %s', async (_label, returnTo) => {
    const { response } = await startSso(t, { connectionId, returnTo });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'validation_failed', errors: [{ field: 'returnTo' }] });
  });

  it.each([
    ['/', '/'],
    ['/account', '/account'],
    ['/orgs/x/admin?tab=sso', '/orgs/x/admin?tab=sso'],
    ['/a/../b', '/b'],
    ['/%2F%2Fevil.example', '/%2F%2Fevil.example'],
  ])('accepts the relative path %s and lands there', async (returnTo, landing) => {
    const round = await ssoLogin(t, { connectionId, returnTo });
    expect(round.callback.statusCode, round.callback.body).toBe(302);
    expect(round.callback.headers.location).toBe(landing);
  });
});

describe('IdP confusion across tenants', () => {
  /**
   * Org B verifies a domain where an org A user's email lives (org A never
   * claimed it) and its IdP asserts that email, verified. The login is
   * refused: an SSO login never attaches to another organization's account.
   */
  it("refuses org B's IdP asserting an org A user's email", async () => {
    const orgA = await signup(t.app, { email: 'victim@shared.test', orgName: 'A Oy' });
    const orgB = await enterpriseOwner(t, { email: 'owner@b.test', orgName: 'B Oy' });
    await verifyDomain(t, orgB, 'shared.test');
    const client = otherIdp.client(0);
    const { id: bConnection } = await createdConnection(t, orgB, { issuer: otherIdp.issuer, clientId: client.clientId, clientSecret: client.clientSecret, domains: ['shared.test'] });
    otherIdp.accounts.set('attacker', { email: 'victim@shared.test', email_verified: true });
    otherIdp.loginAs = 'attacker';

    const round = await ssoLogin(t, { connectionId: bConnection });
    expectSsoFailed(round.callback, 'email_in_other_org');
    expect(round.callback.json().detail).toBe('This account cannot sign in with this identity provider.');
    const victim = t.services.database.sqlite.prepare('SELECT org_id FROM users WHERE email = ?').get('victim@shared.test') as { org_id: string };
    expect(victim.org_id).toBe(orgA.orgId);
    expect(t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM sso_identities').get()).toEqual({ n: 0 });
    // The refusal is audited with the victim as the person concerned.
    const failure = t.services.database.sqlite
      .prepare("SELECT e.org_id, p.user_id FROM audit_events e JOIN audit_pii p ON p.seq = e.seq WHERE e.action = 'auth.login.failed' ORDER BY e.seq DESC LIMIT 1")
      .get() as { org_id: string; user_id: string };
    expect(failure).toEqual({ org_id: orgB.orgId, user_id: orgA.userId });
  });

  /** Org B's IdP asserting an email in a domain that org A verified: not B's domain, refused. */
  it("refuses org B's IdP asserting an email in org A's verified domain", async () => {
    const orgB = await enterpriseOwner(t, { email: 'owner@b2.test', orgName: 'B Oy' });
    await verifyDomain(t, orgB, 'b2.test');
    const client = otherIdp.client(0);
    const { id: bConnection } = await createdConnection(t, orgB, {
      issuer: otherIdp.issuer, clientId: client.clientId, clientSecret: client.clientSecret, domains: ['b2.test', 'acme.test'],
    });
    otherIdp.accounts.set('attacker2', { email: 'newcomer@acme.test', email_verified: true });
    otherIdp.loginAs = 'attacker2';
    const round = await ssoLogin(t, { connectionId: bConnection });
    expectSsoFailed(round.callback, 'domain_unverified');
    expect(t.services.database.sqlite.prepare("SELECT COUNT(*) AS n FROM users WHERE email = 'newcomer@acme.test'").get()).toEqual({ n: 0 });
    // And org B cannot claim-and-verify acme.test: org A holds it.
    const claim = await t.app.inject({ method: 'POST', url: `/v1/orgs/${orgB.orgId}/domains`, ...asUser(orgB.token), payload: { domain: 'acme.test' } });
    expect(claim.statusCode).toBe(409);
  });
});

describe('failure responses', () => {
  /** Information exposure: a refusal says what the person can act on, never a token, code or stack. */
  it('sends a safe problem body and keeps tokens out of it and out of the audit log', async () => {
    const started = await startSso(t, { connectionId });
    const callbackUrl = await authorizeAtIdp(started.location);
    const response = await deliverCallback(t, withParam(callbackUrl, 'iss', 'https://evil.example'), started.ssoCookie);
    expect(response.statusCode).toBe(400);
    const code = callbackUrl.searchParams.get('code') ?? '';
    const state = callbackUrl.searchParams.get('state') ?? '';
    expect(response.body).not.toContain(code);
    expect(response.body).not.toContain(state);
    expect(response.body).not.toMatch(/at .*\.(ts|js):\d+/);
    const audit = JSON.stringify(t.services.database.sqlite.prepare('SELECT * FROM audit_events').all());
    expect(audit).not.toContain(code);
    expect(audit).not.toContain(state);
  });

  it('audits the reason of an IdP error answer (access_denied) and shows a safe message', async () => {
    const started = await startSso(t, { connectionId });
    const state = new URL(started.location).searchParams.get('state') ?? '';
    const denied = new URL('http://localhost:3000/v1/sso/oidc/callback');
    denied.search = new URLSearchParams({ error: 'access_denied', error_description: '<script>x</script>', state, iss: idp.issuer }).toString();
    const response = await deliverCallback(t, denied, started.ssoCookie);
    expectSsoFailed(response, 'idp_error');
    expect(response.body).not.toContain('<script>');
  });

  it('counts logins by outcome in the metrics', async () => {
    await ssoLogin(t, { connectionId });
    const metrics = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/outcome="success"/);
  });

  it('does not leave a usable session behind a refused callback', async () => {
    const started = await startSso(t, { connectionId });
    const callbackUrl = await authorizeAtIdp(started.location);
    const response = await deliverCallback(t, withParam(callbackUrl, 'iss', 'https://evil.example'), started.ssoCookie);
    expect(sessionFrom(response)).toBeNull();
    expect(t.services.database.sqlite.prepare("SELECT COUNT(*) AS n FROM sessions WHERE auth_method = 'oidc'").get()).toEqual({ n: 0 });
  });
});
