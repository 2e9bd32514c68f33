import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { addMember, asUser, auditActions, sessionCookie, signup, type SignedUp } from '../helpers/app.js';
import { TestOidcProvider } from '../helpers/oidc-provider.js';
import { createConnection, createdConnection, enterpriseOwner, ssoLogin, useOidcSsoSuite, verifyDomain, type SsoTestApp } from '../helpers/sso.js';

/**
 * The connections API (feature `sso`, owners/admins, fresh authentication
 * for changes): issuer discovery at creation, sealed secrets, updates,
 * deletion, audit.
 */

let idp: TestOidcProvider;
let t: SsoTestApp;
let owner: SignedUp;

useOidcSsoSuite({ bind: (s) => ({ idp, t, owner } = s) });

const url = (o: SignedUp, id?: string): string => `/v1/orgs/${o.orgId}/sso/connections${id ? `/${id}` : ''}`;

function input(overrides: Record<string, unknown> = {}) {
  const client = idp.client(0);
  return { issuer: idp.issuer, clientId: client.clientId, clientSecret: client.clientSecret, domains: ['Acme.TEST.'], ...overrides } as {
    issuer: string;
    clientId: string;
    clientSecret: string;
    domains: string[];
  };
}

describe('create', () => {
  it('discovers the issuer, stores its metadata, and answers with the connection and our redirect URI — never the secret', async () => {
    await verifyDomain(t, owner, 'acme.test');
    const response = await createConnection(t, owner, { ...input(), name: 'Okta', scopes: ['email', 'groups'] });
    expect(response.statusCode, response.body).toBe(201);
    const body = response.json();
    expect(body).toEqual({
      id: expect.any(String),
      type: 'oidc',
      name: 'Okta',
      enabled: true,
      domains: ['acme.test'],
      issuer: idp.issuer,
      clientId: idp.client(0).clientId,
      scopes: ['openid', 'email', 'groups'],
      redirectUri: 'http://localhost:3000/v1/sso/oidc/callback',
      spEntityId: null,
      acsUrl: null,
      metadataUrl: null,
      idpEntityId: null,
      idpSsoUrl: null,
      idpCertificates: [],
      allowIdpInitiatedSaml: null,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect(response.body).not.toContain(idp.client(0).clientSecret);
    const row = t.services.database.sqlite.prepare('SELECT issuer_metadata, client_secret_sealed FROM sso_connections WHERE id = ?').get(body.id) as {
      issuer_metadata: string;
      client_secret_sealed: string;
    };
    expect(JSON.parse(row.issuer_metadata)).toMatchObject({ issuer: idp.issuer, token_endpoint: `${idp.issuer}/token`, jwks_uri: `${idp.issuer}/jwks` });
    expect(row.client_secret_sealed).toMatch(/^v1\./);
    expect(auditActions(t).at(-1)).toBe('sso.connection.created');
  });

  /** Secrets at rest (SECURITY.md): the client secret is sealed — not in any response, the raw database file or the audit log. */
  it('keeps the client secret out of every response, the raw SQLite file and the audit log', async () => {
    const secret = idp.client(0).clientSecret;
    const created = await createConnection(t, owner, input());
    const { id } = created.json<{ id: string }>();
    const list = await t.app.inject({ method: 'GET', url: url(owner), ...asUser(owner.token) });
    const one = await t.app.inject({ method: 'GET', url: url(owner, id), ...asUser(owner.token) });
    const patched = await t.app.inject({ method: 'PATCH', url: url(owner, id), ...asUser(owner.token), payload: { clientSecret: `${secret}-rotated` } });
    for (const r of [created, list, one, patched]) {
      expect(r.body).not.toContain(secret);
      expect(r.body).not.toMatch(/clientSecret|client_secret/);
    }
    t.services.database.sqlite.pragma('wal_checkpoint(TRUNCATE)');
    const raw = readFileSync(t.databaseFile).toString('latin1');
    expect(raw).not.toContain(secret);
    expect(raw).not.toContain(`${secret}-rotated`);
    expect(JSON.stringify(t.services.database.sqlite.prepare('SELECT * FROM audit_events').all())).not.toContain(secret);
  });

  it('answers 400 validation_failed naming issuer when the issuer is unreachable', async () => {
    const closed = await TestOidcProvider.start();
    const issuer = closed.issuer;
    await closed.close();
    const response = await createConnection(t, owner, input({ issuer }));
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'validation_failed', errors: [{ field: 'issuer', message: 'is unreachable' }] });
    expect(t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM sso_connections').get()).toEqual({ n: 0 });
  });

  it('answers 400 when the issuer serves no discovery document', async () => {
    const response = await createConnection(t, owner, input({ issuer: `${idp.issuer}/not-an-issuer` }));
    expect(response.statusCode).toBe(400);
    expect(response.json().errors[0].field).toBe('issuer');
  });

  it.each([
    ['a non-URL issuer', { issuer: 'not a url at all' }, 'issuer'],
    ['an invalid domain', { domains: ['acme'] }, 'domains.0'],
    ['SAML type with OIDC fields', { type: 'saml' }, 'issuer'],
    ['an unknown field', { extra: 1 }, 'extra'],
  ])('answers 400 for %s', async (_label, overrides, field) => {
    const response = await t.app.inject({ method: 'POST', url: url(owner), ...asUser(owner.token), payload: { type: 'oidc', name: 'X', ...input(), ...overrides } });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors.map((e: { field: string }) => e.field)).toContain(field);
  });

  it('answers 401 reauthentication_required when the session is older than 10 minutes', async () => {
    t.clock.advance(11 * 60_000);
    const stale = await createConnection(t, owner, input());
    expect(stale.statusCode).toBe(401);
    expect(stale.json().code).toBe('reauthentication_required');
    const reauth = await t.app.inject({ method: 'POST', url: '/v1/me/reauthenticate', ...asUser(owner.token), payload: { password: owner.password } });
    expect(reauth.statusCode).toBe(204);
    // The session goes on under a new token (ASVS 7.2.4).
    owner.token = sessionCookie(reauth);
    expect((await createConnection(t, owner, input())).statusCode).toBe(201);
  });
});

describe('gates', () => {
  /** Plan gate: SSO is an Enterprise feature. */
  it('answers 403 plan_required {feature: "sso"} for an organization without the feature', async () => {
    const free = await signup(t.app);
    for (const [method, path] of [['GET', url(free)], ['POST', url(free)], ['GET', `/v1/orgs/${free.orgId}/domains`]] as const) {
      const response = await t.app.inject({ method, url: path, ...asUser(free.token), ...(method === 'POST' ? { payload: { type: 'oidc', name: 'x', ...input() } } : {}) });
      expect(response.statusCode).toBe(403);
      expect(response.json()).toMatchObject({ code: 'plan_required', feature: 'sso', requiredPlan: 'enterprise' });
    }
  });

  it('answers 403 forbidden to a member', async () => {
    const member = await addMember(t, owner, 'member');
    const response = await t.app.inject({ method: 'GET', url: url(owner), ...asUser(member.token) });
    expect(response.statusCode).toBe(403);
    expect(response.json().code).toBe('forbidden');
  });

  it('lets an admin manage connections', async () => {
    const admin = await addMember(t, owner, 'admin');
    const response = await t.app.inject({ method: 'POST', url: url(owner), ...asUser(admin.token), payload: { type: 'oidc', name: 'x', ...input() } });
    expect(response.statusCode, response.body).toBe(201);
  });

  /**
   * Tenant isolation: an admin of org B can neither see nor change org A's
   * connections — through A's URL (policy) nor by putting A's connection id
   * under B's URL (service) — and gets 404, never 403.
   */
  it('hides another organization’s connections (404 both ways)', async () => {
    await verifyDomain(t, owner, 'acme.test');
    const { id } = await createdConnection(t, owner, input());
    const other = await enterpriseOwner(t);
    const attempts = [
      { method: 'GET', url: url(owner) },
      { method: 'GET', url: url(owner, id) },
      { method: 'PATCH', url: url(owner, id), payload: { enabled: false } },
      { method: 'DELETE', url: url(owner, id) },
      { method: 'GET', url: url(other, id) },
      { method: 'PATCH', url: url(other, id), payload: { enabled: false } },
      { method: 'DELETE', url: url(other, id) },
    ] as const;
    for (const attempt of attempts) {
      const response = await t.app.inject({ ...attempt, ...asUser(other.token) });
      expect(response.statusCode, `${attempt.method} ${attempt.url}`).toBe(404);
      expect(response.json().code).toBe('not_found');
    }
    const still = await t.app.inject({ method: 'GET', url: url(owner, id), ...asUser(owner.token) });
    expect(still.json().enabled).toBe(true);
  });
});

describe('update and delete', () => {
  it('renames, changes domains, disables and re-enables, each audited with what changed (never the secret)', async () => {
    await verifyDomain(t, owner, 'acme.test');
    const { id } = await createdConnection(t, owner, input());
    const patched = await t.app.inject({ method: 'PATCH', url: url(owner, id), ...asUser(owner.token), payload: { name: 'Renamed', domains: ['b.test'], enabled: false } });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json()).toMatchObject({ name: 'Renamed', domains: ['b.test'], enabled: false });
    const event = t.services.audit.list({ action: 'sso.connection.updated' }).at(-1);
    expect(event?.data).toMatchObject({ connectionId: id, changed: ['name', 'domains', 'enabled'], enabled: false });
    const list = await t.app.inject({ method: 'GET', url: url(owner), ...asUser(owner.token) });
    expect(list.json().connections).toHaveLength(1);
  });

  it('rotates the client secret: logins use the new one', async () => {
    await verifyDomain(t, owner, 'acme.test');
    const { id } = await createdConnection(t, owner, { ...input(), clientSecret: 'wrong-secret' });
    idp.accounts.set('rot', { email: 'rot@acme.test', email_verified: true });
    idp.loginAs = 'rot';
    const before = await ssoLogin(t, { connectionId: id });
    expect(before.callback.statusCode).toBe(400);
    await t.app.inject({ method: 'PATCH', url: url(owner, id), ...asUser(owner.token), payload: { clientSecret: idp.client(0).clientSecret } });
    const after = await ssoLogin(t, { connectionId: id });
    expect(after.callback.statusCode, after.callback.body).toBe(302);
    expect(t.services.audit.list({ action: 'sso.connection.updated' }).at(-1)?.data).toMatchObject({ changed: ['clientSecret'] });
  });

  it('re-runs discovery when the issuer changes, and refuses a bad one without changing anything', async () => {
    const { id } = await createdConnection(t, owner, input());
    const bad = await t.app.inject({ method: 'PATCH', url: url(owner, id), ...asUser(owner.token), payload: { issuer: 'http://127.0.0.1:1' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors[0].field).toBe('issuer');
    const same = await t.app.inject({ method: 'GET', url: url(owner, id), ...asUser(owner.token) });
    expect(same.json().issuer).toBe(idp.issuer);
  });

  it('deletes a connection with its identity links; 404 afterwards', async () => {
    await verifyDomain(t, owner, 'acme.test');
    const { id } = await createdConnection(t, owner, input());
    idp.accounts.set('del', { email: 'del@acme.test', email_verified: true });
    idp.loginAs = 'del';
    expect((await ssoLogin(t, { connectionId: id })).callback.statusCode).toBe(302);
    const deleted = await t.app.inject({ method: 'DELETE', url: url(owner, id), ...asUser(owner.token) });
    expect(deleted.statusCode).toBe(204);
    expect((await t.app.inject({ method: 'GET', url: url(owner, id), ...asUser(owner.token) })).statusCode).toBe(404);
    expect(t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM sso_identities').get()).toEqual({ n: 0 });
    // The provisioned user keeps the account (and can reset a password).
    expect(t.services.database.sqlite.prepare("SELECT COUNT(*) AS n FROM users WHERE email = 'del@acme.test'").get()).toEqual({ n: 1 });
    expect(auditActions(t).at(-1)).toBe('sso.connection.deleted');
  });
});

/**
 * A connection enabled for a domain the organization never proved it
 * controls (issue: accepted silently). Such a connection can sign nobody in
 * by email (linking and JIT need a verified domain), yet it satisfied
 * `enforceSso`, so an organization could force everyone onto an IdP that
 * cannot let them in. It may be created, but disabled, and is enabled only
 * once one of its domains is verified.
 */
describe('enabling needs a verified domain', () => {
  const patch = (id: string, payload: Record<string, unknown>) => t.app.inject({ method: 'PATCH', url: url(owner, id), ...asUser(owner.token), payload });

  it('creates a connection for unverified domains disabled (201), audited so', async () => {
    const response = await createConnection(t, owner, input({ domains: ['acme.test', 'beta.test'] }));
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json()).toMatchObject({ enabled: false, domains: ['acme.test', 'beta.test'] });
    expect(t.services.audit.list({ action: 'sso.connection.created' }).at(-1)?.data).toMatchObject({ enabled: false });
    // Disabled: it starts no login.
    expect((await t.app.inject({ method: 'GET', url: `/v1/sso/start?connectionId=${response.json().id}` })).statusCode).not.toBe(302);
  });

  it('refuses PATCH enabled:true with 409 conflict naming the unverified domains, and accepts it once one is verified', async () => {
    const { id } = await createdConnection(t, owner, input({ domains: ['acme.test', 'beta.test'] }));
    const refused = await patch(id, { enabled: true });
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ code: 'conflict', unverifiedDomains: ['acme.test', 'beta.test'] });
    expect(refused.json().detail).toContain('acme.test, beta.test');
    expect((await t.app.inject({ method: 'GET', url: url(owner, id), ...asUser(owner.token) })).json().enabled).toBe(false);

    await verifyDomain(t, owner, 'beta.test');
    const enabled = await patch(id, { enabled: true });
    expect(enabled.statusCode, enabled.body).toBe(200);
    expect(enabled.json().enabled).toBe(true);
  });

  it('refuses moving an enabled connection onto unverified domains only (409), but allows adding one beside a verified domain', async () => {
    await verifyDomain(t, owner, 'acme.test');
    const { id } = await createdConnection(t, owner, input());
    expect((await patch(id, { domains: ['beta.test'] })).statusCode).toBe(409);
    expect((await patch(id, { domains: [] })).statusCode).toBe(409);
    const widened = await patch(id, { domains: ['acme.test', 'beta.test'] });
    expect(widened.statusCode, widened.body).toBe(200);
    expect(widened.json()).toMatchObject({ enabled: true, domains: ['acme.test', 'beta.test'] });
    // Disabling and re-domaining a disabled connection are always allowed.
    expect((await patch(id, { enabled: false, domains: ['beta.test'] })).statusCode).toBe(200);
  });

  it('does not count a domain verified by another organization, nor a connection without domains', async () => {
    const other = await enterpriseOwner(t);
    await verifyDomain(t, other, 'acme.test');
    const { id } = await createdConnection(t, owner, input());
    expect((await patch(id, { enabled: true })).statusCode).toBe(409);
    const none = await createdConnection(t, owner, input({ domains: [] }));
    const refused = await patch(none.id, { enabled: true });
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ code: 'conflict', unverifiedDomains: [] });
  });

  /** `enforceSso` cannot rest on a connection enabled (before this rule) with no verified domain. */
  it('does not let enforceSso rely on an enabled connection without a verified domain', async () => {
    const { id } = await createdConnection(t, owner, input());
    // As a connection enabled before the rule existed would be.
    t.services.database.sqlite.prepare('UPDATE sso_connections SET enabled = 1 WHERE id = ?').run(id);
    const response = await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${owner.orgId}`, ...asUser(owner.token), payload: { settings: { enforceSso: true } } });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual([{ field: 'settings.enforceSso', message: 'needs an enabled SSO connection with a verified domain' }]);
  });
});
