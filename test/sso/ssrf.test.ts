/**
 * Server-side request forgery through IdP configuration: an org admin
 * registers an "issuer" (or an IdP whose metadata names endpoints) that
 * makes the service call into its own network — loopback, RFC 1918, link
 * local cloud metadata (169.254.169.254), IPv4-mapped IPv6 — or over plain
 * http. SECURITY.md "SSRF": issuer and metadata URLs must be https and
 * resolve to public addresses; only the loudly named test switch
 * DANGEROUSLY_ALLOW_LOOPBACK_IDP relaxes loopback, and nothing else.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { classifyAddress } from '../../src/sso/connections/ssrf-guard.js';
import { JoseIdp } from '../helpers/jose-idp.js';
import { buildSsoTestApp, createConnection, enterpriseOwner, type SsoTestApp } from '../helpers/sso.js';

let apps: SsoTestApp[] = [];
let idp: JoseIdp;

beforeAll(async () => {
  idp = await JoseIdp.start();
});
afterAll(async () => {
  await idp.close();
});
afterEach(async () => {
  await Promise.all(apps.map((a) => a.close()));
  apps = [];
});

async function app(env: Record<string, string>): Promise<SsoTestApp> {
  const t = await buildSsoTestApp(env);
  apps.push(t);
  return t;
}

async function attempt(t: SsoTestApp, issuer: string) {
  const owner = await enterpriseOwner(t);
  return createConnection(t, owner, { issuer, clientId: 'c', clientSecret: 's', domains: [] });
}

describe('without the loopback switch (production settings)', () => {
  it.each([
    ['plain http', 'http://idp.example.com', 'must be an https URL'],
    ['https to 127.0.0.1', 'https://127.0.0.1/', 'resolves to a private or reserved address'],
    ['https to localhost', 'https://localhost:8443', 'resolves to a private or reserved address'],
    ['https to ::1', 'https://[::1]/', 'resolves to a private or reserved address'],
    ['https to IPv4-mapped loopback', 'https://[::ffff:127.0.0.1]/', 'resolves to a private or reserved address'],
    ['https to 10.0.0.1', 'https://10.0.0.1/', 'resolves to a private or reserved address'],
    ['https to 192.168.1.1', 'https://192.168.1.1/', 'resolves to a private or reserved address'],
    ['https to the cloud metadata address', 'https://169.254.169.254/', 'resolves to a private or reserved address'],
    ['https to 0.0.0.0', 'https://0.0.0.0/', 'resolves to a private or reserved address'],
    ['a URL with credentials', 'https://user:pass@idp.example.com/', 'must not contain credentials'],
    ['a non-http scheme', 'file:///etc/passwd', 'must be an https URL'],
  ])('refuses %s with 400 validation_failed naming issuer', async (_label, issuer, message) => {
    const t = await app({});
    const response = await attempt(t, issuer);
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'validation_failed', errors: [{ field: 'issuer', message }] });
  });

  /** DNS decides: an innocent-looking https host name that resolves to loopback is refused before any request. */
  it('refuses an https host name that resolves to 127.0.0.1', async () => {
    const t = await app({});
    t.dns.hosts.set('idp.attacker.example', [{ address: '127.0.0.1', family: 4 }]);
    const response = await attempt(t, 'https://idp.attacker.example/');
    expect(response.statusCode).toBe(400);
    expect(response.json().errors[0]).toEqual({ field: 'issuer', message: 'resolves to a private or reserved address' });
  });

  it('refuses a host name when any one of its addresses is private', async () => {
    const t = await app({});
    t.dns.hosts.set('mixed.attacker.example', [
      { address: '93.184.216.34', family: 4 },
      { address: '10.1.2.3', family: 4 },
    ]);
    expect((await attempt(t, 'https://mixed.attacker.example/')).statusCode).toBe(400);
  });

  it('refuses the loopback test IdP itself (http://127.0.0.1)', async () => {
    const t = await app({});
    expect((await attempt(t, idp.issuer)).json().errors[0].message).toBe('must be an https URL');
  });
});

describe('with DANGEROUSLY_ALLOW_LOOPBACK_IDP=true', () => {
  const env = { DANGEROUSLY_ALLOW_LOOPBACK_IDP: 'true' };

  it('allows http to a loopback IdP', async () => {
    const t = await app(env);
    expect((await attempt(t, idp.issuer)).statusCode).toBe(201);
  });

  it.each([
    ['http to a public host', 'http://idp.example.com/', 'must be an https URL'],
    ['https to 10.0.0.1', 'https://10.0.0.1/', 'resolves to a private or reserved address'],
    ['https to the cloud metadata address', 'https://169.254.169.254/', 'resolves to a private or reserved address'],
  ])('still refuses %s', async (_label, issuer, message) => {
    const t = await app(env);
    const response = await attempt(t, issuer);
    expect(response.statusCode).toBe(400);
    expect(response.json().errors[0]).toEqual({ field: 'issuer', message });
  });

  /** The IdP's metadata is held to the same rules: an endpoint pointing into the private network is refused. */
  it.each([
    ['token_endpoint', 'http://10.0.0.7/token'],
    ['jwks_uri', 'https://169.254.169.254/latest/meta-data/'],
    ['userinfo_endpoint', 'http://192.168.0.10/userinfo'],
    ['authorization_endpoint', 'javascript:alert(1)'],
  ])('refuses metadata whose %s points at %s', async (field, target) => {
    const t = await app(env);
    idp.metadataOverrides = { [field]: target };
    try {
      const response = await attempt(t, idp.issuer);
      expect(response.statusCode).toBe(400);
      expect(response.json().errors[0].message).toContain(`metadata ${field}`);
    } finally {
      idp.metadataOverrides = {};
    }
  });
});

describe('address classification', () => {
  it.each([
    ['8.8.8.8', 'public'],
    ['2606:4700:4700::1111', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['10.20.30.40', 'private'],
    ['172.16.5.4', 'private'],
    ['100.64.0.1', 'private'],
    ['169.254.169.254', 'private'],
    ['fd00::1', 'private'],
    ['fe80::1', 'private'],
    ['::', 'private'],
    ['224.0.0.1', 'private'],
    ['not-an-ip', 'private'],
  ])('%s is %s', (address, verdict) => {
    expect(classifyAddress(address)).toBe(verdict);
  });
});
