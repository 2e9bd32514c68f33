import type { FastifyServerOptions } from 'fastify';
import { expect } from 'vitest';
import { ManualClock } from '../../src/platform/clock.js';
import { asUser, buildTestApp, type LightMyRequestResponse, type SignedUp, type TestApp } from './app.js';
import { TestSamlIdp, type ResponseFields } from './saml-idp.js';
import { buildSsoTestApp, enterpriseOwner, LOOPBACK_ENV, TestDns, verifyDomain, type SsoTestApp } from './sso.js';

/** buildSsoTestApp with a logger of the test's choosing (to read what the service logs). */
async function loggingSsoTestApp(logger: FastifyServerOptions['logger']): Promise<SsoTestApp> {
  const dns = new TestDns();
  const t = await buildTestApp({ env: LOOPBACK_ENV, clock: new ManualClock(new Date()), dnsResolver: dns, logger });
  return Object.assign(t, { dns });
}

/** The Origin an IdP's auto-submitted form carries (another site). */
export const IDP_ORIGIN = 'https://idp.example.test';

export interface SamlConnection {
  id: string;
  spEntityId: string;
  acsUrl: string;
  metadataUrl: string;
  /** Our SP metadata as served by GET /v1/sso/saml/:id/metadata. */
  spMetadataXml: string;
}

export function createSamlConnection(t: TestApp, owner: SignedUp, payload: Record<string, unknown>): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/sso/connections`, ...asUser(owner.token), payload: { type: 'saml', name: 'Corporate SAML', ...payload } });
}

/** Create a SAML connection from `idp`'s metadata through the API; returns our SP values and metadata. */
export async function samlConnectionFor(
  t: TestApp,
  owner: SignedUp,
  idp: TestSamlIdp,
  extra: { domains?: string[]; allowIdpInitiatedSaml?: boolean } = {},
): Promise<SamlConnection> {
  const created = await createSamlConnection(t, owner, { idpMetadataXml: idp.metadataXml(), domains: ['acme.test'], ...extra });
  expect(created.statusCode, created.body).toBe(201);
  const view = created.json<{ id: string; spEntityId: string; acsUrl: string; metadataUrl: string }>();
  const metadata = await t.app.inject({ method: 'GET', url: new URL(view.metadataUrl).pathname });
  expect(metadata.statusCode, metadata.body).toBe(200);
  return { ...view, spMetadataXml: metadata.body };
}

/** `GET /v1/sso/start?connectionId=…` and the IdP reading our AuthnRequest: the request id to answer. */
export async function startSaml(t: TestApp, idp: TestSamlIdp, connection: SamlConnection, query: Record<string, string> = {}): Promise<string> {
  const start = await t.app.inject({ method: 'GET', url: `/v1/sso/start?${new URLSearchParams({ connectionId: connection.id, ...query }).toString()}` });
  expect(start.statusCode, start.body).toBe(302);
  const request = await idp.receiveAuthnRequest(String(start.headers.location), connection.spMetadataXml);
  return request.id;
}

/** The IdP's auto-POST to our ACS: form-urlencoded, from the IdP's origin, no cookies. */
export function postAcs(
  t: TestApp,
  connection: Pick<SamlConnection, 'acsUrl'>,
  samlResponse: string,
  options: { relayState?: string; origin?: string | null; cookies?: Record<string, string> } = {},
): Promise<LightMyRequestResponse> {
  const form = new URLSearchParams({ SAMLResponse: samlResponse, ...(options.relayState === undefined ? {} : { RelayState: options.relayState }) });
  return t.app.inject({
    method: 'POST',
    url: new URL(connection.acsUrl).pathname,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(options.origin === null ? {} : { origin: options.origin ?? IDP_ORIGIN }),
    },
    ...(options.cookies ? { cookies: options.cookies } : {}),
    payload: form.toString(),
  });
}

/** Response fields for `connection` with the right values; tests override one. */
export function fieldsFor(connection: SamlConnection, inResponseTo: string | null, user: Partial<ResponseFields> = {}): ResponseFields {
  return {
    spMetadataXml: connection.spMetadataXml,
    acsUrl: connection.acsUrl,
    spEntityId: connection.spEntityId,
    inResponseTo,
    nameId: 'alice-nameid',
    email: 'alice@acme.test',
    name: 'Alice Example',
    ...user,
  };
}

/** The most recent refused SAML login's audit reason. */
export function lastSamlFailureReason(t: TestApp): string | null {
  const row = t.services.database.sqlite
    .prepare("SELECT data FROM audit_events WHERE action = 'auth.login.failed' ORDER BY seq DESC LIMIT 1")
    .get() as { data: string } | undefined;
  if (!row) return null;
  const data = JSON.parse(row.data) as { method?: string; reason?: string };
  return data.method === 'saml' ? (data.reason ?? null) : null;
}

/** Number of successful SAML logins recorded. */
export function samlLogins(t: TestApp): number {
  const rows = t.services.database.sqlite.prepare("SELECT data FROM audit_events WHERE action = 'auth.login.succeeded'").all() as { data: string }[];
  return rows.filter((r) => (JSON.parse(r.data) as { method?: string }).method === 'saml').length;
}

/** A refusal: 400 sso_failed problem JSON, no session cookie, nothing internal in the body, the audited reason. */
export function expectRefused(t: TestApp, response: LightMyRequestResponse, reason: string | RegExp): void {
  expect(response.statusCode, response.body).toBe(400);
  expect(response.headers['content-type']).toMatch(/application\/problem\+json/);
  expect(response.json()).toMatchObject({ code: 'sso_failed', status: 400 });
  expect(response.cookies.find((c) => c.name === 'cleverom_session')).toBeUndefined();
  expect(response.body).not.toMatch(/<|at \w+ \(|node_modules|Error:/);
  const audited = lastSamlFailureReason(t);
  if (typeof reason === 'string') expect(audited).toBe(reason);
  else expect(audited).toMatch(reason);
}

export interface SamlWorld {
  t: SsoTestApp;
  owner: SignedUp;
  idp: TestSamlIdp;
  connection: SamlConnection;
}

/** An enterprise org with acme.test verified and a SAML connection to a fresh samlify IdP. */
export async function samlWorld(options: { allowIdpInitiatedSaml?: boolean; idp?: TestSamlIdp; logger?: FastifyServerOptions['logger'] } = {}): Promise<SamlWorld> {
  const t = options.logger ? await loggingSsoTestApp(options.logger) : await buildSsoTestApp();
  const owner = await enterpriseOwner(t, { email: 'owner@acme.test' });
  await verifyDomain(t, owner, 'acme.test');
  const idp = options.idp ?? new TestSamlIdp('https://idp.example.test/metadata');
  const connection = await samlConnectionFor(t, owner, idp, options.allowIdpInitiatedSaml ? { allowIdpInitiatedSaml: true } : {});
  return { t, owner, idp, connection };
}
