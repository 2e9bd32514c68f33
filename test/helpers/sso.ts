import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import type { DnsResolver, ResolvedAddress } from '../../src/platform/dns.js';
import { systemDnsResolver } from '../../src/platform/dns.js';
import { ManualClock } from '../../src/platform/clock.js';
import { asUser, buildTestApp, PUBLIC_ORIGIN, signup, type LightMyRequestResponse, type SignedUp, type TestApp } from './app.js';
import { REDIRECT_URI, TestOidcProvider } from './oidc-provider.js';
import { makeEnterprise } from './totp.js';

export const LOOPBACK_ENV = { DANGEROUSLY_ALLOW_LOOPBACK_IDP: 'true' };

/**
 * The DNS as the tests want it: TXT records they publish, host names they
 * point somewhere; anything else goes to the real resolver. (DNS is the
 * network, not one of our components.)
 */
export class TestDns implements DnsResolver {
  readonly txt = new Map<string, string[][]>();
  readonly hosts = new Map<string, ResolvedAddress[]>();
  queries: string[] = [];

  async resolveTxt(name: string): Promise<string[][]> {
    this.queries.push(name);
    const records = this.txt.get(name);
    if (!records) throw Object.assign(new Error(`queryTxt ENODATA ${name}`), { code: 'ENODATA' });
    return records;
  }

  async lookup(hostname: string): Promise<ResolvedAddress[]> {
    return this.hosts.get(hostname) ?? systemDnsResolver.lookup(hostname);
  }

  /** Publish `cleverom-verification=<token>` where the service looks for it. */
  publish(domain: string, token: string): void {
    this.txt.set(`_cleverom-challenge.${domain}`, [[`cleverom-verification=${token}`]]);
  }
}

export interface SsoTestApp extends TestApp {
  dns: TestDns;
}

/**
 * The app with the test-only loopback switch on (the IdPs listen on
 * 127.0.0.1) and a manual clock starting at real time: the IdPs sign with
 * real time, and our ID-token checks read our clock.
 */
export async function buildSsoTestApp(env: Record<string, string> = LOOPBACK_ENV): Promise<SsoTestApp> {
  const dns = new TestDns();
  const t = await buildTestApp({ env, clock: new ManualClock(new Date()), dnsResolver: dns });
  return Object.assign(t, { dns });
}

export async function enterpriseOwner(t: TestApp, overrides: Parameters<typeof signup>[1] = {}): Promise<SignedUp> {
  const owner = await signup(t.app, overrides);
  await makeEnterprise(t, owner.orgId);
  return owner;
}

/** Claim `domain` through the API, publish its TXT record, verify through the API. */
export async function verifyDomain(t: SsoTestApp, owner: SignedUp, domain: string): Promise<void> {
  const claim = await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/domains`, ...asUser(owner.token), payload: { domain } });
  expect(claim.statusCode, claim.body).toBe(201);
  t.dns.publish(domain, claim.json<{ verificationToken: string }>().verificationToken);
  const verify = await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/domains/${domain}/verify`, ...asUser(owner.token) });
  expect(verify.statusCode, verify.body).toBe(200);
}

export interface ConnectionInput {
  issuer: string;
  clientId: string;
  clientSecret: string;
  domains: string[];
  name?: string;
  scopes?: string[];
}

export function createConnection(t: TestApp, owner: SignedUp, input: ConnectionInput): Promise<LightMyRequestResponse> {
  return t.app.inject({
    method: 'POST',
    url: `/v1/orgs/${owner.orgId}/sso/connections`,
    ...asUser(owner.token),
    payload: { type: 'oidc', name: input.name ?? 'Corporate IdP', ...input },
  });
}

export async function createdConnection(t: TestApp, owner: SignedUp, input: ConnectionInput): Promise<{ id: string }> {
  const response = await createConnection(t, owner, input);
  expect(response.statusCode, response.body).toBe(201);
  return response.json<{ id: string }>();
}

export interface OidcSsoSuite {
  /** One real OpenID Provider for the whole file. */
  idp: TestOidcProvider;
  /** A fresh app for each test. */
  t: SsoTestApp;
  /** The owner of a fresh enterprise organization. */
  owner: SignedUp;
}

export interface ConnectedOidcSsoSuite extends OidcSsoSuite {
  /** The owner's connection to the IdP's first client, for the verified domain. */
  connectionId: string;
}

/**
 * Signup overrides for the owner (e.g. a fixed email); with `domain`, that
 * domain is verified and a connection to the IdP's first client is created
 * for it. `bind` receives what each test uses.
 */
export type OidcSsoSuiteOptions = { owner?: Parameters<typeof signup>[1] } & (
  | { domain: string; bind: (suite: ConnectedOidcSsoSuite) => void }
  | { domain?: undefined; bind: (suite: OidcSsoSuite) => void }
);

/**
 * The usual top of an OIDC SSO test file, as hooks: the IdP starts once
 * (closed after the file); before each test, a fresh SSO app and an
 * enterprise owner (and, with `domain`, the verified domain and a
 * connection) are handed to `bind`; after each test, the app is closed.
 */
export function useOidcSsoSuite(options: OidcSsoSuiteOptions): void {
  let idp: TestOidcProvider | undefined;
  let app: SsoTestApp | undefined;

  beforeAll(async () => {
    idp = await TestOidcProvider.start();
  });
  afterAll(async () => {
    await idp?.close();
  });
  beforeEach(async () => {
    if (!idp) throw new Error('the test IdP did not start');
    const t = await buildSsoTestApp();
    app = t;
    const owner = await enterpriseOwner(t, options.owner);
    if (options.domain === undefined) {
      options.bind({ idp, t, owner });
      return;
    }
    await verifyDomain(t, owner, options.domain);
    const client = idp.client(0);
    const { id: connectionId } = await createdConnection(t, owner, { issuer: idp.issuer, clientId: client.clientId, clientSecret: client.clientSecret, domains: [options.domain] });
    options.bind({ idp, t, owner, connectionId });
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });
}

/** A browser's cookies at the IdP (one jar per simulated browser). */
export class CookieJar {
  private readonly cookies = new Map<string, string>();

  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  take(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair?.indexOf('=') ?? -1;
      if (!pair || eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a)) || value === '';
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
}

/** `GET /v1/sso/start?…` on our app. */
export async function startSso(t: TestApp, query: Record<string, string>, ssoCookie?: string): Promise<{ response: LightMyRequestResponse; location: string; ssoCookie: string }> {
  const response = await t.app.inject({
    method: 'GET',
    url: `/v1/sso/start?${new URLSearchParams(query).toString()}`,
    ...(ssoCookie ? { cookies: { cleverom_sso: ssoCookie } } : {}),
  });
  const cookie = response.cookies.find((c) => c.name === 'cleverom_sso')?.value ?? '';
  return { response, location: String(response.headers.location ?? ''), ssoCookie: cookie };
}

/**
 * Follow the IdP's redirects by hand, as a browser would, from the
 * authorization URL until it sends us back to our callback; returns that URL.
 */
export async function authorizeAtIdp(authorizationUrl: string, jar: CookieJar = new CookieJar()): Promise<URL> {
  let next = new URL(authorizationUrl);
  for (let hop = 0; hop < 10; hop += 1) {
    if (next.href.startsWith(REDIRECT_URI)) return next;
    const response = await fetch(next, { redirect: 'manual', headers: { cookie: jar.header() } });
    jar.take(response);
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) {
      throw new Error(`IdP stopped at ${next.href}: ${response.status} ${await response.text()}`);
    }
    next = new URL(location, next);
  }
  throw new Error('too many redirects at the IdP');
}

/** Deliver an authorization response to our callback (with the browser's SSO cookie). */
export function deliverCallback(t: TestApp, callbackUrl: URL, ssoCookie: string | undefined): Promise<LightMyRequestResponse> {
  return t.app.inject({
    method: 'GET',
    url: `${callbackUrl.pathname}${callbackUrl.search}`,
    ...(ssoCookie ? { cookies: { cleverom_sso: ssoCookie } } : {}),
  });
}

export interface SsoRound {
  start: LightMyRequestResponse;
  callbackUrl: URL;
  ssoCookie: string;
  callback: LightMyRequestResponse;
}

/** Start, log in at the IdP, come back: the whole SP-initiated login. */
export async function ssoLogin(t: TestApp, query: Record<string, string>): Promise<SsoRound> {
  const started = await startSso(t, query);
  expect(started.response.statusCode, started.response.body).toBe(302);
  const callbackUrl = await authorizeAtIdp(started.location);
  const callback = await deliverCallback(t, callbackUrl, started.ssoCookie);
  return { start: started.response, callbackUrl, ssoCookie: started.ssoCookie, callback };
}

/** The session cookie a successful callback set, or null. */
export function sessionFrom(response: LightMyRequestResponse): string | null {
  return response.cookies.find((c) => c.name === 'cleverom_session')?.value ?? null;
}

/** The most recent `auth.login.failed` SSO reason in the audit log. */
export function lastSsoFailureReason(t: TestApp): string | null {
  const row = t.services.database.sqlite
    .prepare("SELECT data FROM audit_events WHERE action = 'auth.login.failed' ORDER BY seq DESC LIMIT 1")
    .get() as { data: string } | undefined;
  if (!row) return null;
  const data = JSON.parse(row.data) as { method?: string; reason?: string };
  return data.method === 'oidc' ? (data.reason ?? null) : null;
}

export { PUBLIC_ORIGIN };
