import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addMember, asUser, auditActions, signup, type SignedUp } from '../helpers/app.js';
import { createSamlConnection, samlConnectionFor } from '../helpers/saml.js';
import { parseXml, selfSignedCertificate, TestSamlIdp, type TestKeys } from '../helpers/saml-idp.js';
import { buildSsoTestApp, enterpriseOwner, verifyDomain, type SsoTestApp } from '../helpers/sso.js';

/**
 * SAML connections through the connections API (feature `sso`, owners and
 * admins, fresh authentication): created from uploaded IdP metadata — parsed
 * by us, without DTDs, keeping every signing certificate — or from the three
 * values; every invalid input a 400 naming its field; our per-connection SP
 * values in the answer; the SP metadata endpoint; tenant isolation.
 */

let t: SsoTestApp;
let owner: SignedUp;
// Keys made for this run (the tables below need them when the file loads).
const idp = new TestSamlIdp('https://idp.example.test/metadata');

beforeEach(async () => {
  t = await buildSsoTestApp();
  owner = await enterpriseOwner(t);
});
afterEach(async () => {
  await t.close();
});

const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const DS = 'http://www.w3.org/2000/09/xmldsig#';
const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';

function keyDescriptor(cert: string, use: string | null): string {
  return `<md:KeyDescriptor${use ? ` use="${use}"` : ''}><ds:KeyInfo><ds:X509Data><ds:X509Certificate>\n${cert.match(/.{1,64}/g)?.join('\n')}\n</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`;
}

/** IdP metadata as AD FS / Entra publish it during a key rollover: two signing keys, an encryption key, POST and Redirect SSO. */
function metadata(options: { entityId?: string; signing?: TestKeys[]; encryption?: TestKeys; redirectUrl?: string | null; prolog?: string; protocol?: string } = {}): string {
  const signing = options.signing ?? [idp.keys];
  return (
    `${options.prolog ?? '<?xml version="1.0" encoding="UTF-8"?>'}` +
    `<md:EntityDescriptor xmlns:md="${MD}" xmlns:ds="${DS}" entityID="${options.entityId ?? 'https://sts.example.test/adfs/services/trust'}">` +
    `<md:IDPSSODescriptor protocolSupportEnumeration="${options.protocol ?? 'urn:oasis:names:tc:SAML:2.0:protocol'}">` +
    signing.map((k, i) => keyDescriptor(k.certificateBase64, i === 0 ? 'signing' : null)).join('') +
    (options.encryption ? keyDescriptor(options.encryption.certificateBase64, 'encryption') : '') +
    `<md:SingleSignOnService Binding="${POST}" Location="https://sts.example.test/adfs/ls/post"/>` +
    (options.redirectUrl === null ? '' : `<md:SingleSignOnService Binding="${REDIRECT}" Location="${options.redirectUrl ?? 'https://sts.example.test/adfs/ls/'}"/>`) +
    `</md:IDPSSODescriptor></md:EntityDescriptor>`
  );
}

function fieldsOf(body: { errors?: { field: string }[] }): string[] {
  return (body.errors ?? []).map((e) => e.field);
}

describe('create from IdP metadata', () => {
  it('takes the entity id, the HTTP-Redirect SSO URL and every signing certificate; answers with our per-connection SP values', async () => {
    const next = selfSignedCertificate('Next signing key');
    const encryption = selfSignedCertificate('Encryption key');
    await verifyDomain(t, owner, 'acme.test');
    const response = await createSamlConnection(t, owner, { idpMetadataXml: metadata({ signing: [idp.keys, next], encryption }), domains: ['Acme.test'] });
    expect(response.statusCode, response.body).toBe(201);
    const body = response.json();
    expect(body).toMatchObject({
      type: 'saml',
      name: 'Corporate SAML',
      enabled: true,
      domains: ['acme.test'],
      issuer: null,
      clientId: null,
      redirectUri: null,
      spEntityId: `http://localhost:3000/v1/sso/saml/${body.id}/metadata`,
      acsUrl: `http://localhost:3000/v1/sso/saml/${body.id}/acs`,
      metadataUrl: `http://localhost:3000/v1/sso/saml/${body.id}/metadata`,
      idpEntityId: 'https://sts.example.test/adfs/services/trust',
      idpSsoUrl: 'https://sts.example.test/adfs/ls/',
      allowIdpInitiatedSaml: false,
    });
    // Both signing certificates kept (rollover), the encryption-only one not.
    expect(body.idpCertificates).toHaveLength(2);
    expect(body.idpCertificates.map((c: { subject: string }) => c.subject)).toEqual(['CN=Test IdP', 'CN=Next signing key']);
    expect(body.idpCertificates[0].sha256Fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const row = t.services.database.sqlite.prepare('SELECT saml_idp_certificates FROM sso_connections WHERE id = ?').get(body.id) as { saml_idp_certificates: string };
    expect(JSON.parse(row.saml_idp_certificates)).toEqual([idp.keys.certificateBase64, next.certificateBase64]);
    expect(auditActions(t).at(-1)).toBe('sso.connection.created');
    const event = t.services.database.sqlite.prepare("SELECT data FROM audit_events WHERE action = 'sso.connection.created'").get() as { data: string };
    expect(JSON.parse(event.data)).toMatchObject({ type: 'saml', idpEntityId: 'https://sts.example.test/adfs/services/trust', allowIdpInitiatedSaml: false });
  });

  it("accepts a real IdP's metadata (samlify's own) and an EntitiesDescriptor with one IdP", async () => {
    const direct = await createSamlConnection(t, owner, { idpMetadataXml: idp.metadataXml() });
    expect(direct.statusCode, direct.body).toBe(201);
    expect(direct.json()).toMatchObject({ idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl, domains: [] });
    const wrapped = `<md:EntitiesDescriptor xmlns:md="${MD}">${metadata().replace(/^<\?xml[^>]*\?>/, '')}</md:EntitiesDescriptor>`;
    expect((await createSamlConnection(t, owner, { idpMetadataXml: wrapped })).statusCode).toBe(201);
  });

  /** XXE / entity expansion ("billion laughs") through the metadata upload: a DTD is refused before parsing. */
  it.each([
    ['an external entity (XXE)', '<?xml version="1.0"?><!DOCTYPE md [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'],
    ['entity expansion', '<?xml version="1.0"?><!DOCTYPE md [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'],
    ['a bare DOCTYPE', '<!doctype md>'],
  ])('refuses metadata with a DOCTYPE: %s (400 naming idpMetadataXml)', async (_label, prolog) => {
    const response = await createSamlConnection(t, owner, { idpMetadataXml: metadata({ prolog }) });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'validation_failed', errors: [{ field: 'idpMetadataXml', message: expect.stringMatching(/DTD/) }] });
    expect(t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM sso_connections').get()).toEqual({ n: 0 });
  });

  it.each([
    ['not XML', 'this is not xml', /well-formed/],
    ['unclosed XML', metadata().slice(0, -20), /well-formed/],
    ['SP metadata', `<md:EntityDescriptor xmlns:md="${MD}" entityID="https://sp.test"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></md:EntityDescriptor>`, /IDPSSODescriptor/],
    ['no HTTP-Redirect SSO service', metadata({ redirectUrl: null }), /HTTP-Redirect/],
    ['an http SSO URL', metadata({ redirectUrl: 'http://sts.example.test/adfs/ls/' }), /https/],
    ['no signing certificate', metadata({ signing: [] }), /signing certificate/],
    ['a broken certificate', metadata().replace(/<ds:X509Certificate>\n[A-Za-z0-9+/]{10}/, '<ds:X509Certificate>\nAAAAAAAAAA'), /not a valid X\.509/],
    ['SAML 1.1 only', metadata({ protocol: 'urn:oasis:names:tc:SAML:1.1:protocol' }), /SAML 2\.0/],
    ['an empty entityID', metadata({ entityId: '' }), /entityID/],
  ])('refuses %s with 400 naming idpMetadataXml', async (_label, xml, message) => {
    const response = await createSamlConnection(t, owner, { idpMetadataXml: xml });
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json().errors).toEqual([{ field: 'idpMetadataXml', message: expect.stringMatching(message) }]);
  });

  it('refuses metadata together with hand-given values', async () => {
    const response = await createSamlConnection(t, owner, { idpMetadataXml: metadata(), idpEntityId: 'https://other' });
    expect(response.statusCode).toBe(400);
    expect(fieldsOf(response.json())).toEqual(['idpMetadataXml']);
  });
});

describe('create from entity id, SSO URL and certificate', () => {
  it('accepts a PEM certificate, a bare base64 one, or a list for rollover', async () => {
    const next = selfSignedCertificate('Next');
    for (const idpCertificate of [idp.keys.certificatePem, idp.keys.certificateBase64, [idp.keys.certificatePem, next.certificateBase64], idp.keys.certificatePem + next.certificatePem]) {
      const response = await createSamlConnection(t, owner, { idpEntityId: 'https://idp.example.test/metadata', idpSsoUrl: 'https://idp.example.test/sso', idpCertificate, domains: ['acme.test'] });
      expect(response.statusCode, response.body).toBe(201);
      expect(response.json().idpCertificates.length).toBe(typeof idpCertificate === 'string' && !idpCertificate.includes(next.certificatePem) ? 1 : 2);
    }
  });

  it.each([
    ['a missing certificate', { idpCertificate: undefined }, ['idpCertificate']],
    ['a certificate that is not one', { idpCertificate: 'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA' }, ['idpCertificate']],
    ['a private key instead of the certificate', { idpCertificate: 'PRIVATE' }, ['idpCertificate']],
    ['PEM with trailing junk', { idpCertificate: 'CERT-WITH-JUNK' }, ['idpCertificate']],
    ['an http SSO URL', { idpSsoUrl: 'http://idp.example.test/sso' }, ['idpSsoUrl']],
    ['a non-URL SSO URL', { idpSsoUrl: 'idp.example.test/sso' }, ['idpSsoUrl']],
    ['an entity id with spaces', { idpEntityId: 'my idp' }, ['idpEntityId']],
    ['nothing at all', { idpEntityId: undefined, idpSsoUrl: undefined, idpCertificate: undefined }, ['idpEntityId', 'idpSsoUrl', 'idpCertificate']],
  ])('refuses %s with 400 naming the field', async (_label, overrides, fields) => {
    const special: Record<string, string> = { PRIVATE: idp.keys.privateKeyPem, 'CERT-WITH-JUNK': `${idp.keys.certificatePem}\nextra` };
    const payload: Record<string, unknown> = { idpEntityId: 'https://idp.example.test/metadata', idpSsoUrl: 'https://idp.example.test/sso', idpCertificate: idp.keys.certificatePem, ...overrides };
    if (typeof payload.idpCertificate === 'string' && special[payload.idpCertificate]) payload.idpCertificate = special[payload.idpCertificate];
    for (const key of Object.keys(payload)) if (payload[key] === undefined) delete payload[key];
    const response = await createSamlConnection(t, owner, payload);
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json().code).toBe('validation_failed');
    expect(fieldsOf(response.json())).toEqual(fields);
    expect(response.body).not.toContain('PRIVATE KEY');
  });
});

describe('SP metadata', () => {
  it('GET /v1/sso/saml/:id/metadata is SP metadata: our entity id, the HTTP-POST ACS, a NameID format, signed assertions wanted', async () => {
    await verifyDomain(t, owner, 'acme.test');
    const connection = await samlConnectionFor(t, owner, idp);
    const response = await t.app.inject({ method: 'GET', url: `/v1/sso/saml/${connection.id}/metadata` });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/samlmetadata\+xml/);
    const doc = parseXml(response.body);
    const root = doc.documentElement;
    expect([root.namespaceURI, root.localName, root.getAttribute('entityID')]).toEqual([MD, 'EntityDescriptor', connection.spEntityId]);
    const sp = doc.getElementsByTagNameNS(MD, 'SPSSODescriptor').item(0);
    expect(sp?.getAttribute('WantAssertionsSigned')).toBe('true');
    expect(sp?.getAttribute('protocolSupportEnumeration')).toBe('urn:oasis:names:tc:SAML:2.0:protocol');
    const acs = doc.getElementsByTagNameNS(MD, 'AssertionConsumerService').item(0);
    expect([acs?.getAttribute('Binding'), acs?.getAttribute('Location')]).toEqual([POST, connection.acsUrl]);
    expect(doc.getElementsByTagNameNS(MD, 'NameIDFormat').item(0)?.textContent).toBe('urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified');
    // And a real IdP can load it.
    const start = await t.app.inject({ method: 'GET', url: `/v1/sso/start?connectionId=${connection.id}` });
    const request = await idp.receiveAuthnRequest(String(start.headers.location), response.body);
    expect(request.issuer).toBe(connection.spEntityId);
  });

  it('is 404 for an unknown connection and for an OIDC one', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/v1/sso/saml/nope/metadata' })).statusCode).toBe(404);
    t.services.database.sqlite
      .prepare("INSERT INTO sso_connections (id, org_id, type, name, domains, issuer, client_id, client_secret_sealed, scopes, issuer_metadata, created_at, updated_at) VALUES ('oidc1', ?, 'oidc', 'x', '[]', 'https://i', 'c', 's', '[]', '{}', 0, 0)")
      .run(owner.orgId);
    expect((await t.app.inject({ method: 'GET', url: '/v1/sso/saml/oidc1/metadata' })).statusCode).toBe(404);
  });
});

describe('update', () => {
  it('rotates certificates, turns IdP-initiated login on (audited), and re-imports metadata', async () => {
    const connection = await samlConnectionFor(t, owner, idp);
    const next = selfSignedCertificate('Rotated');
    const url = `/v1/orgs/${owner.orgId}/sso/connections/${connection.id}`;
    const rotated = await t.app.inject({ method: 'PATCH', url, ...asUser(owner.token), payload: { idpCertificate: [idp.keys.certificatePem, next.certificatePem] } });
    expect(rotated.statusCode, rotated.body).toBe(200);
    expect(rotated.json().idpCertificates).toHaveLength(2);
    const opened = await t.app.inject({ method: 'PATCH', url, ...asUser(owner.token), payload: { allowIdpInitiatedSaml: true } });
    expect(opened.json()).toMatchObject({ allowIdpInitiatedSaml: true, idpEntityId: idp.entityId });
    const event = t.services.database.sqlite.prepare("SELECT data FROM audit_events WHERE action = 'sso.connection.updated' ORDER BY seq DESC LIMIT 1").get() as { data: string };
    expect(JSON.parse(event.data)).toMatchObject({ changed: ['allowIdpInitiatedSaml'], allowIdpInitiatedSaml: true });
    const reimported = await t.app.inject({ method: 'PATCH', url, ...asUser(owner.token), payload: { idpMetadataXml: metadata() } });
    expect(reimported.json()).toMatchObject({ idpEntityId: 'https://sts.example.test/adfs/services/trust', idpSsoUrl: 'https://sts.example.test/adfs/ls/', allowIdpInitiatedSaml: true });
    expect(reimported.json().idpCertificates).toHaveLength(1);
  });

  it('refuses SAML settings on an OIDC connection, OIDC settings on a SAML one, and an invalid certificate', async () => {
    const connection = await samlConnectionFor(t, owner, idp);
    const url = `/v1/orgs/${owner.orgId}/sso/connections/${connection.id}`;
    const oidc = await t.app.inject({ method: 'PATCH', url, ...asUser(owner.token), payload: { clientSecret: 'x' } });
    expect(oidc.statusCode).toBe(400);
    const badCert = await t.app.inject({ method: 'PATCH', url, ...asUser(owner.token), payload: { idpCertificate: 'nope' } });
    expect(badCert.statusCode).toBe(400);
    expect(fieldsOf(badCert.json())).toEqual(['idpCertificate']);
    const doctype = await t.app.inject({ method: 'PATCH', url, ...asUser(owner.token), payload: { idpMetadataXml: metadata({ prolog: '<!DOCTYPE x>' }) } });
    expect(fieldsOf(doctype.json())).toEqual(['idpMetadataXml']);
  });
});

/**
 * As for OIDC: a SAML connection for a domain the organization has not
 * verified is created disabled, and cannot be enabled (409 naming the
 * domains) until one of its domains is verified.
 */
describe('enabling needs a verified domain', () => {
  it('creates it disabled for unverified domains (or none), refuses enabling with 409, enables once a domain is verified', async () => {
    const none = await createSamlConnection(t, owner, { idpMetadataXml: idp.metadataXml() });
    expect(none.statusCode, none.body).toBe(201);
    expect(none.json()).toMatchObject({ enabled: false, domains: [] });
    const created = await createSamlConnection(t, owner, { idpMetadataXml: idp.metadataXml(), domains: ['acme.test'] });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json().enabled).toBe(false);
    const url = `/v1/orgs/${owner.orgId}/sso/connections/${created.json().id}`;
    const refused = await t.app.inject({ method: 'PATCH', url, ...asUser(owner.token), payload: { enabled: true } });
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ code: 'conflict', unverifiedDomains: ['acme.test'] });
    await verifyDomain(t, owner, 'acme.test');
    const enabled = await t.app.inject({ method: 'PATCH', url, ...asUser(owner.token), payload: { enabled: true } });
    expect(enabled.statusCode, enabled.body).toBe(200);
    expect(enabled.json().enabled).toBe(true);
  });
});

describe('gates', () => {
  /** Plan gate: SSO is an Enterprise feature. */
  it('answers 403 plan_required for an organization without feature sso', async () => {
    const free = await signup(t.app);
    const response = await createSamlConnection(t, free, { idpMetadataXml: idp.metadataXml() });
    expect(response.statusCode).toBe(403);
    expect(response.json()).toMatchObject({ code: 'plan_required', feature: 'sso' });
  });

  it('answers 403 to a member (owners and admins only)', async () => {
    const member = await addMember(t, owner, 'member');
    expect((await createSamlConnection(t, member, { idpMetadataXml: idp.metadataXml() })).statusCode).toBe(403);
  });

  /** Tenant isolation: an admin of org B can neither see nor change org A's SAML connection (404, never 403). */
  it("keeps org A's SAML connection invisible to org B's owner", async () => {
    const connection = await samlConnectionFor(t, owner, idp);
    const other = await enterpriseOwner(t);
    const asOther = asUser(other.token);
    const ownUrl = `/v1/orgs/${other.orgId}/sso/connections/${connection.id}`;
    const foreignUrl = `/v1/orgs/${owner.orgId}/sso/connections/${connection.id}`;
    for (const [method, url, payload] of [
      ['GET', ownUrl, undefined],
      ['PATCH', ownUrl, { allowIdpInitiatedSaml: true }],
      ['DELETE', ownUrl, undefined],
      ['GET', foreignUrl, undefined],
      ['PATCH', foreignUrl, { idpCertificate: selfSignedCertificate('evil').certificatePem }],
      ['DELETE', foreignUrl, undefined],
    ] as const) {
      const response = await t.app.inject({ method, url, ...asOther, ...(payload ? { payload } : {}) });
      expect(response.statusCode, `${method} ${url}`).toBe(404);
    }
    const list = await t.app.inject({ method: 'GET', url: `/v1/orgs/${other.orgId}/sso/connections`, ...asOther });
    expect(list.json().connections).toEqual([]);
    const row = t.services.database.sqlite.prepare('SELECT saml_allow_idp_initiated, saml_idp_certificates FROM sso_connections WHERE id = ?').get(connection.id) as {
      saml_allow_idp_initiated: number;
      saml_idp_certificates: string;
    };
    expect(row.saml_allow_idp_initiated).toBe(0);
    expect(JSON.parse(row.saml_idp_certificates)).toEqual([idp.keys.certificateBase64]);
  });
});
