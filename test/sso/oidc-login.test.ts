import { describe, expect, it } from 'vitest';
import { addMember, asUser, auditActions } from '../helpers/app.js';
import type { TestOidcProvider } from '../helpers/oidc-provider.js';
import {
  lastSsoFailureReason, sessionFrom, ssoLogin, startSso, useOidcSsoSuite, verifyDomain, type SsoTestApp,
} from '../helpers/sso.js';
import type { SignedUp } from '../helpers/app.js';

/**
 * SSO login against a real OpenID Provider (oidc-provider on 127.0.0.1):
 * home-realm discovery, the authorization request, the callback, JIT
 * provisioning and the linking rules for existing users.
 */

let idp: TestOidcProvider;
let t: SsoTestApp;
let owner: SignedUp;
let connectionId: string;

useOidcSsoSuite({ owner: { email: 'owner@acme.test' }, domain: 'acme.test', bind: (s) => ({ idp, t, owner, connectionId } = s) });

function asIdpUser(sub: string, claims: { email?: string; email_verified?: boolean; name?: string }): void {
  idp.accounts.set(sub, claims);
  idp.loginAs = sub;
}

function usersWithEmail(email: string): { id: string; org_id: string; role: string; password_hash: string | null }[] {
  return t.services.database.sqlite.prepare('SELECT id, org_id, role, password_hash FROM users WHERE email = ?').all(email) as never;
}

describe('happy path', () => {
  it('discovers the connection by email domain, redirects with code + PKCE S256 + state + nonce, and stores the state server-side (hashed)', async () => {
    const { response, location, ssoCookie } = await startSso(t, { email: 'alice@acme.test' });
    expect(response.statusCode).toBe(302);
    expect(response.headers['cache-control']).toBe('no-store');
    const url = new URL(location);
    expect(url.origin + url.pathname).toBe(`${idp.issuer}/auth`);
    const p = url.searchParams;
    expect(p.get('response_type')).toBe('code');
    expect(p.get('client_id')).toBe(idp.client(0).clientId);
    expect(p.get('redirect_uri')).toBe('http://localhost:3000/v1/sso/oidc/callback');
    expect(p.get('code_challenge_method')).toBe('S256');
    expect(p.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(p.get('state')?.length).toBeGreaterThanOrEqual(43);
    expect(p.get('nonce')?.length).toBeGreaterThanOrEqual(43);
    expect(p.get('scope')?.split(' ')).toEqual(['openid', 'email', 'profile']);
    expect(p.get('login_hint')).toBe('alice@acme.test');
    // The browser-binding cookie: HttpOnly, SameSite=Lax.
    const cookie = response.cookies.find((c) => c.name === 'cleverom_sso');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    expect(ssoCookie).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // Server-side, single-use state: only its hash is stored.
    const rows = t.services.database.sqlite.prepare('SELECT state_hash, code_verifier, expires_at, created_at, consumed_at FROM sso_transactions').all() as {
      state_hash: string;
      expires_at: number;
      created_at: number;
      consumed_at: number | null;
    }[];
    expect(rows).toHaveLength(1);
    expect(rows[0]?.state_hash).not.toBe(p.get('state'));
    expect((rows[0]?.expires_at ?? 0) - (rows[0]?.created_at ?? 0)).toBe(10 * 60_000);
    expect(rows[0]?.consumed_at).toBeNull();
  });

  it('JIT-provisions a member for a verified-domain email with email_verified, issues an oidc session and redirects to returnTo', async () => {
    asIdpUser('alice-sub', { email: 'Alice@Acme.test', email_verified: true, name: 'Alice Example' });
    const round = await ssoLogin(t, { email: 'alice@acme.test', returnTo: '/account?tab=security#mfa' });
    expect(round.callback.statusCode, round.callback.body).toBe(302);
    expect(round.callback.headers.location).toBe('/account?tab=security#mfa');
    const token = sessionFrom(round.callback);
    expect(token).not.toBeNull();
    // The binding cookie is spent.
    expect(round.callback.cookies.find((c) => c.name === 'cleverom_sso')?.value).toBe('');

    const me = await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(token ?? '') });
    expect(me.statusCode, me.body).toBe(200);
    expect(me.json()).toMatchObject({
      user: { email: 'alice@acme.test', name: 'Alice Example', orgId: owner.orgId, role: 'member' },
      session: { authMethod: 'oidc', aal: 1 },
    });
    const [user] = usersWithEmail('alice@acme.test');
    expect(user?.password_hash).toBeNull();
    expect(auditActions(t).slice(-3)).toEqual(['sso.user.provisioned', 'sso.identity.linked', 'auth.login.succeeded']);
    const login = t.services.database.sqlite.prepare("SELECT data FROM audit_events WHERE action = 'auth.login.succeeded' ORDER BY seq DESC LIMIT 1").get() as { data: string };
    expect(JSON.parse(login.data)).toMatchObject({ method: 'oidc', aal: 1, connectionId });
  });

  it('defaults returnTo to / and starts by connectionId too', async () => {
    asIdpUser('bob-sub', { email: 'bob@acme.test', email_verified: true });
    const round = await ssoLogin(t, { connectionId });
    expect(round.callback.statusCode, round.callback.body).toBe(302);
    expect(round.callback.headers.location).toBe('/');
    expect(new URL(String(round.start.headers.location)).searchParams.has('login_hint')).toBe(false);
  });

  it('logs the same person in again by (connection, subject) without creating a second account, even after the IdP changes the email', async () => {
    asIdpUser('carol-sub', { email: 'carol@acme.test', email_verified: true });
    const first = await ssoLogin(t, { email: 'carol@acme.test' });
    expect(first.callback.statusCode).toBe(302);
    idp.accounts.set('carol-sub', { email: 'carol.renamed@acme.test', email_verified: false });
    const second = await ssoLogin(t, { connectionId });
    expect(second.callback.statusCode, second.callback.body).toBe(302);
    const me = await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(sessionFrom(second.callback) ?? '') });
    expect(me.json().user.email).toBe('carol@acme.test');
    expect(usersWithEmail('carol.renamed@acme.test')).toHaveLength(0);
    expect(t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM sso_identities').get()).toEqual({ n: 1 });
  });

  it('answers 404 not_found for an email whose domain no organization verified', async () => {
    const { response } = await startSso(t, { email: 'someone@unknown.test' });
    expect(response.statusCode).toBe(404);
    expect(response.json().code).toBe('not_found');
  });

  it('answers 404 for an unknown connectionId, and 400 when both or neither of email and connectionId are given', async () => {
    expect((await startSso(t, { connectionId: 'nope' })).response.statusCode).toBe(404);
    expect((await startSso(t, {})).response.statusCode).toBe(400);
    expect((await startSso(t, { email: 'a@acme.test', connectionId })).response.statusCode).toBe(400);
  });
});

describe('linking an existing user (SECURITY.md: account linking)', () => {
  /** Same organization, verified domain, email_verified: the existing account is linked, not duplicated. */
  it('links an existing member of the same organization', async () => {
    const member = await addMember(t, owner, 'member');
    // addMember invites a random @example.com address: give the member one in the verified domain.
    t.services.database.sqlite.prepare('UPDATE users SET email = ? WHERE id = ?').run('dave@acme.test', member.userId);
    asIdpUser('dave-sub', { email: 'dave@acme.test', email_verified: true });
    const round = await ssoLogin(t, { email: 'dave@acme.test' });
    expect(round.callback.statusCode, round.callback.body).toBe(302);
    const me = await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(sessionFrom(round.callback) ?? '') });
    expect(me.json().user.id).toBe(member.userId);
    expect(auditActions(t).slice(-2)).toEqual(['sso.identity.linked', 'auth.login.succeeded']);
    expect(usersWithEmail('dave@acme.test')).toHaveLength(1);
  });

  /** nOAuth-style takeover: an IdP account that merely claims an email must not get that account. */
  it.each([
    ['email_verified is false', { email_verified: false }, 'email_unverified'],
    ['email_verified is absent', {}, 'email_unverified'],
  ])('refuses to link or provision when %s', async (_label, extra, reason) => {
    asIdpUser('eve-sub', { email: 'owner@acme.test', ...extra });
    const round = await ssoLogin(t, { connectionId });
    expect(round.callback.statusCode).toBe(400);
    expect(round.callback.json()).toMatchObject({ code: 'sso_failed' });
    expect(sessionFrom(round.callback)).toBeNull();
    expect(lastSsoFailureReason(t)).toBe(reason);
    expect(t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM sso_identities').get()).toEqual({ n: 0 });
  });

  /** A second IdP subject asserting the email of an already linked account (reassigned address) does not take it over. */
  it('refuses a second subject for an account already linked on this connection', async () => {
    asIdpUser('frank-sub', { email: 'frank@acme.test', email_verified: true });
    expect((await ssoLogin(t, { connectionId })).callback.statusCode).toBe(302);
    asIdpUser('frank-impostor', { email: 'frank@acme.test', email_verified: true });
    const round = await ssoLogin(t, { connectionId });
    expect(round.callback.statusCode).toBe(400);
    expect(lastSsoFailureReason(t)).toBe('user_linked_to_other_subject');
  });

  it('refuses an email in a domain the connection lists but the organization has not verified', async () => {
    await t.app.inject({
      method: 'PATCH',
      url: `/v1/orgs/${owner.orgId}/sso/connections/${connectionId}`,
      ...asUser(owner.token),
      payload: { domains: ['acme.test', 'acme-unverified.test'] },
    });
    asIdpUser('gina-sub', { email: 'gina@acme-unverified.test', email_verified: true });
    const round = await ssoLogin(t, { connectionId });
    expect(round.callback.statusCode).toBe(400);
    expect(lastSsoFailureReason(t)).toBe('domain_unverified');
    expect(usersWithEmail('gina@acme-unverified.test')).toHaveLength(0);
    // Home-realm discovery does not find it either.
    expect((await startSso(t, { email: 'gina@acme-unverified.test' })).response.statusCode).toBe(404);
  });

  it('refuses an email in a domain the organization verified but the connection does not list', async () => {
    await verifyDomain(t, owner, 'other-acme.test');
    asIdpUser('hal-sub', { email: 'hal@other-acme.test', email_verified: true });
    const round = await ssoLogin(t, { connectionId });
    expect(round.callback.statusCode).toBe(400);
    expect(lastSsoFailureReason(t)).toBe('domain_not_in_connection');
  });

  it('refuses a restricted account with 403 account_restricted', async () => {
    asIdpUser('ivy-sub', { email: 'ivy@acme.test', email_verified: true });
    expect((await ssoLogin(t, { connectionId })).callback.statusCode).toBe(302);
    t.services.database.sqlite.prepare("UPDATE users SET status = 'restricted' WHERE email = 'ivy@acme.test'").run();
    const round = await ssoLogin(t, { connectionId });
    expect(round.callback.statusCode).toBe(403);
    expect(round.callback.json().code).toBe('account_restricted');
  });
});
