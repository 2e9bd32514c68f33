/**
 * Enforced SSO and its escape hatches. Attacks and failure modes covered:
 * bypassing the IdP with a password (including through the TOTP second
 * step), an admin locking the organization out (disabling the last
 * connection; turning enforcement on, or removing the last break-glass
 * flag, while no owner keeps a way in), and a plan downgrade leaving users
 * stranded (API.md: downgrade never locks anyone out). Break-glass owners
 * keep a password path, audited on every use.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { GOOD_PASSWORD, addMember, asUser, auditActions, mailToken, signup, type SignedUp } from '../helpers/app.js';
import type { TestOidcProvider } from '../helpers/oidc-provider.js';
import { enterpriseOwner, ssoLogin, useOidcSsoSuite, type SsoTestApp } from '../helpers/sso.js';
import { enrolTotp } from '../helpers/totp.js';

let idp: TestOidcProvider;
let t: SsoTestApp;
let owner: SignedUp;
let connectionId: string;

useOidcSsoSuite({ domain: 'acme.test', owner: { email: 'owner@acme.test' }, bind: (s) => ({ idp, t, owner, connectionId } = s) });

function enforce(value: boolean, as: SignedUp = owner) {
  return t.app.inject({ method: 'PATCH', url: `/v1/orgs/${as.orgId}`, ...asUser(as.token), payload: { settings: { enforceSso: value } } });
}

function passwordLogin(email: string) {
  return t.app.inject({ method: 'POST', url: '/v1/login', payload: { email, password: GOOD_PASSWORD } });
}

/** The owner signs in once through the IdP (her account is linked by its verified email): a way in under enforcement. */
async function ownerSignsInThroughSso(): Promise<void> {
  idp.accounts.set('owner-sub', { email: owner.email, email_verified: true });
  idp.loginAs = 'owner-sub';
  const round = await ssoLogin(t, { connectionId });
  expect(round.callback.statusCode, round.callback.body).toBe(302);
}

function breakGlass(userId: string, method: 'PUT' | 'DELETE', as: SignedUp = owner) {
  return t.app.inject({ method, url: `/v1/orgs/${as.orgId}/sso/break-glass/${userId}`, ...asUser(as.token) });
}

describe('turning enforcement on', () => {
  it('needs an enabled connection (400 naming settings.enforceSso)', async () => {
    await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${owner.orgId}/sso/connections/${connectionId}`, ...asUser(owner.token), payload: { enabled: false } });
    const response = await enforce(true);
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual([{ field: 'settings.enforceSso', message: 'needs an enabled SSO connection with a verified domain' }]);
  });

  it('needs the sso feature (403 plan_required)', async () => {
    const free = await signup(t.app);
    const response = await enforce(true, free);
    expect(response.statusCode).toBe(403);
    expect(response.json()).toMatchObject({ code: 'plan_required', feature: 'sso' });
  });

  it('is accepted with an enabled connection and audited as an org change', async () => {
    await ownerSignsInThroughSso();
    const response = await enforce(true);
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json().settings.enforceSso).toBe(true);
    expect(auditActions(t).at(-1)).toBe('org.updated');
  });
});

/**
 * The lock-out of the issue: enforcement turned on while the only owner is
 * not break-glass and has never signed in through SSO took her password
 * login away with no warning. Refused (409 naming the fix) unless an
 * active owner keeps a way in.
 */
describe('turning enforcement on never locks every owner out', () => {
  it('refuses with 409 conflict naming the fix when no owner is break-glass or has signed in through SSO', async () => {
    const before = auditActions(t).length;
    const response = await enforce(true);
    expect(response.statusCode).toBe(409);
    expect(response.json()).toMatchObject({ code: 'conflict' });
    expect(response.json().detail).toContain('Make an owner a break-glass owner or sign in once through SSO');
    expect((await t.app.inject({ method: 'GET', url: `/v1/orgs/${owner.orgId}`, ...asUser(owner.token) })).json().settings.enforceSso).toBe(false);
    expect(auditActions(t).slice(before)).not.toContain('org.updated');
    expect((await passwordLogin(owner.email)).statusCode).toBe(200);
  });

  it('accepts it when an owner is a break-glass owner, who keeps password login', async () => {
    expect((await breakGlass(owner.userId, 'PUT')).statusCode).toBe(204);
    expect((await enforce(true)).statusCode).toBe(200);
    expect((await passwordLogin(owner.email)).statusCode).toBe(200);
  });

  it('accepts it when an owner has signed in through SSO, who can sign in that way again', async () => {
    await ownerSignsInThroughSso();
    expect((await enforce(true)).statusCode).toBe(200);
    expect((await passwordLogin(owner.email)).statusCode).toBe(403);
    expect((await ssoLogin(t, { connectionId })).callback.statusCode).toBe(302);
  });

  it('does not count an admin who signed in through SSO', async () => {
    idp.accounts.set('jit-admin', { email: 'ada@acme.test', email_verified: true });
    idp.loginAs = 'jit-admin';
    expect((await ssoLogin(t, { connectionId })).callback.statusCode).toBe(302);
    const ada = t.services.database.sqlite.prepare("SELECT id FROM users WHERE email = 'ada@acme.test'").get() as { id: string };
    const promoted = await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${owner.orgId}/members/${ada.id}`, ...asUser(owner.token), payload: { role: 'admin' } });
    expect(promoted.statusCode, promoted.body).toBe(200);
    expect((await enforce(true)).statusCode).toBe(409);
  });

  it('does not count an owner whose SSO identity is on a connection that is now disabled', async () => {
    await ownerSignsInThroughSso();
    const client = idp.client(1);
    const second = await t.app.inject({
      method: 'POST', url: `/v1/orgs/${owner.orgId}/sso/connections`, ...asUser(owner.token),
      payload: { type: 'oidc', name: 'Second', issuer: idp.issuer, clientId: client.clientId, clientSecret: client.clientSecret, domains: ['acme.test'] },
    });
    expect(second.json(), second.body).toMatchObject({ enabled: true });
    const disabled = await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${owner.orgId}/sso/connections/${connectionId}`, ...asUser(owner.token), payload: { enabled: false } });
    expect(disabled.statusCode).toBe(200);
    expect((await enforce(true)).statusCode).toBe(409);
  });

  it('refuses removing the last break-glass flag while enforced (409), and allows it once another way in exists', async () => {
    expect((await breakGlass(owner.userId, 'PUT')).statusCode).toBe(204);
    expect((await enforce(true)).statusCode).toBe(200);
    const refused = await breakGlass(owner.userId, 'DELETE');
    expect(refused.statusCode).toBe(409);
    expect(refused.json().detail).toContain('sign in once through SSO');
    expect((await passwordLogin(owner.email)).statusCode).toBe(200);
    await ownerSignsInThroughSso();
    expect((await breakGlass(owner.userId, 'DELETE')).statusCode).toBe(204);
  });
});

describe('password login under enforced SSO', () => {
  beforeEach(async () => {
    await ownerSignsInThroughSso();
    expect((await enforce(true)).statusCode).toBe(200);
  });

  it('answers 403 sso_required with an ssoUrl that starts the login at the right connection', async () => {
    const member = await addMember(t, owner, 'member');
    const response = await passwordLogin(member.email);
    expect(response.statusCode).toBe(403);
    const body = response.json();
    expect(body.code).toBe('sso_required');
    expect(body.ssoUrl).toBe(`http://localhost:3000/v1/sso/start?connectionId=${connectionId}`);
    expect(response.cookies.some((c) => c.name === 'cleverom_session')).toBe(false);
    // The ssoUrl works.
    const start = await t.app.inject({ method: 'GET', url: new URL(body.ssoUrl).pathname + new URL(body.ssoUrl).search });
    expect(start.statusCode).toBe(302);
  });

  /** Bypass through the second step: a member with TOTP must not get a session via /v1/login/mfa. */
  it('refuses members with a second factor too (SSO is decided before MFA)', async () => {
    const member = await addMember(t, owner, 'member');
    await enforce(false);
    await enrolTotp(t, member);
    await enforce(true);
    const response = await passwordLogin(member.email);
    expect(response.statusCode).toBe(403);
    expect(response.json().code).toBe('sso_required');
    expect(response.cookies.some((c) => c.name === 'cleverom_mfa')).toBe(false);
  });

  it('refuses owners who are not break-glass accounts', async () => {
    const response = await passwordLogin(owner.email);
    expect(response.statusCode).toBe(403);
    expect(response.json().code).toBe('sso_required');
  });

  it('lets a break-glass owner in with the password, audited on every use', async () => {
    const flag = await t.app.inject({ method: 'PUT', url: `/v1/orgs/${owner.orgId}/sso/break-glass/${owner.userId}`, ...asUser(owner.token) });
    expect(flag.statusCode, flag.body).toBe(204);
    expect(auditActions(t).at(-1)).toBe('sso.break_glass.granted');
    for (let i = 0; i < 2; i += 1) {
      const response = await passwordLogin(owner.email);
      expect(response.statusCode, response.body).toBe(200);
    }
    expect(auditActions(t).filter((a) => a === 'sso.break_glass.used')).toHaveLength(2);
    const list = await t.app.inject({ method: 'GET', url: `/v1/orgs/${owner.orgId}/sso/break-glass`, ...asUser(owner.token) });
    expect(list.json().accounts).toEqual([{ userId: owner.userId, createdAt: expect.any(String) }]);
    // Unflagged, the password no longer works for them.
    expect((await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${owner.orgId}/sso/break-glass/${owner.userId}`, ...asUser(owner.token) })).statusCode).toBe(204);
    expect((await passwordLogin(owner.email)).statusCode).toBe(403);
  });

  it('only flags owners, and only an owner may flag', async () => {
    const admin = await addMember(t, owner, 'admin');
    const member = await addMember(t, owner, 'member');
    const notOwner = await t.app.inject({ method: 'PUT', url: `/v1/orgs/${owner.orgId}/sso/break-glass/${member.userId}`, ...asUser(owner.token) });
    expect(notOwner.statusCode).toBe(400);
    const byAdmin = await t.app.inject({ method: 'PUT', url: `/v1/orgs/${owner.orgId}/sso/break-glass/${owner.userId}`, ...asUser(admin.token) });
    expect(byAdmin.statusCode).toBe(403);
    const other = await enterpriseOwner(t);
    const crossTenant = await t.app.inject({ method: 'PUT', url: `/v1/orgs/${owner.orgId}/sso/break-glass/${other.userId}`, ...asUser(owner.token) });
    expect(crossTenant.statusCode).toBe(404);
  });

  it('leaves SSO login itself working', async () => {
    idp.accounts.set('m', { email: 'm@acme.test', email_verified: true });
    idp.loginAs = 'm';
    expect((await ssoLogin(t, { email: 'm@acme.test' })).callback.statusCode).toBe(302);
  });

  it('does not touch other organizations', async () => {
    const other = await signup(t.app);
    expect((await passwordLogin(other.email)).statusCode).toBe(200);
  });
});

describe('never a lock-out', () => {
  beforeEach(async () => {
    await ownerSignsInThroughSso();
    expect((await enforce(true)).statusCode).toBe(200);
  });

  it('refuses to disable or delete the last enabled connection while SSO is enforced (409)', async () => {
    const path = `/v1/orgs/${owner.orgId}/sso/connections/${connectionId}`;
    const disable = await t.app.inject({ method: 'PATCH', url: path, ...asUser(owner.token), payload: { enabled: false } });
    expect(disable.statusCode).toBe(409);
    expect((await t.app.inject({ method: 'DELETE', url: path, ...asUser(owner.token) })).statusCode).toBe(409);
    await enforce(false);
    expect((await t.app.inject({ method: 'PATCH', url: path, ...asUser(owner.token), payload: { enabled: false } })).statusCode).toBe(200);
  });

  /** API.md: after a downgrade, connections become inactive, enforceSso lifts, and users may reset a password. */
  it('lifts enforcement after a downgrade: password login and reset work again', async () => {
    const member = await addMember(t, owner, 'member');
    expect((await passwordLogin(member.email)).statusCode).toBe(403);
    await t.services.orgs.setPlan(owner.orgId, 'pro', { type: 'system', id: null });
    expect((await passwordLogin(member.email)).statusCode).toBe(200);

    // A JIT-provisioned SSO user (no password) can set one through reset.
    await t.services.orgs.setPlan(owner.orgId, 'enterprise', { type: 'system', id: null });
    idp.accounts.set('jit', { email: 'jit@acme.test', email_verified: true });
    idp.loginAs = 'jit';
    expect((await ssoLogin(t, { connectionId })).callback.statusCode).toBe(302);
    await t.services.orgs.setPlan(owner.orgId, 'free', { type: 'system', id: null });
    expect((await t.app.inject({ method: 'POST', url: '/v1/password-reset', payload: { email: 'jit@acme.test' } })).statusCode).toBe(202);
    const token = mailToken(t, 'jit@acme.test', 'password_reset');
    const confirm = await t.app.inject({ method: 'POST', url: '/v1/password-reset/confirm', payload: { token, newPassword: 'a brand new long passphrase' } });
    expect(confirm.statusCode).toBe(204);
    const login = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: 'jit@acme.test', password: 'a brand new long passphrase' } });
    expect(login.statusCode, login.body).toBe(200);
  });
});
