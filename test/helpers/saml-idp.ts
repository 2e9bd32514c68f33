import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import samlify from 'samlify';
import { SignedXml } from 'xml-crypto';

/**
 * A real SAML 2.0 identity provider for the tests: samlify 2.13 in IdP mode,
 * in-process, used ONLY to sign (it never verifies anything of ours). Keys
 * and self-signed certificates are made fresh for every run (no committed
 * private key).
 *
 * samlify quirks handled here (docs: ../../../shared/notes/saml.md §5.8):
 * - `setSchemaValidator` is mandatory and process-global; the
 *   @authenio/samlify-node-xmllint validator can end the test process
 *   (`process.exit` on a stdout 'drain'), so a strict xmldom
 *   well-formedness check stands in for it;
 * - in ESM its helpers are only on the default export;
 * - `replaceTagsByValue` escapes XML, so the response XML is built here,
 *   with our own escaping, and handed to samlify whole for signing.
 *
 * Time: node-saml (our SP library) reads the system clock, so responses are
 * dated with real time (`Date.now()`), and the app's manual clock starts at
 * real time too (test/helpers/sso.ts). Expiry tests either sign responses
 * that are already expired in real time, or move only the app's clock.
 */

samlify.setSchemaValidator({
  validate: async (xml: string): Promise<string> => {
    const problems: string[] = [];
    const fail = (m: string): void => void problems.push(m);
    new DOMParser({ errorHandler: { warning: fail, error: fail, fatalError: fail } }).parseFromString(xml, 'text/xml');
    if (problems.length > 0 || /<!DOCTYPE/i.test(xml)) throw new Error('ERR_INVALID_XML');
    return 'ok';
  },
});

const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
export const NS_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
export const NS_ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';
export const NS_DSIG = 'http://www.w3.org/2000/09/xmldsig#';

// --- A self-signed X.509 certificate with node:crypto only (DER by hand; Node cannot issue certificates) ---
function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, ...parts: Buffer[]): Buffer => {
  const content = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
};
const sequence = (...parts: Buffer[]): Buffer => tlv(0x30, ...parts);
const SHA256_WITH_RSA = sequence(tlv(0x06, Buffer.from('2a864886f70d01010b', 'hex')), Buffer.from([0x05, 0x00]));
const commonName = (cn: string): Buffer => sequence(tlv(0x31, sequence(tlv(0x06, Buffer.from('550403', 'hex')), tlv(0x0c, Buffer.from(cn, 'utf8')))));
const utcTime = (d: Date): Buffer => tlv(0x17, Buffer.from(`${d.toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`));

export interface TestKeys {
  privateKeyPem: string;
  certificatePem: string;
  /** Base64 DER, as in <ds:X509Certificate>. */
  certificateBase64: string;
}

/** A fresh RSA-2048 key and a self-signed certificate for it (X.509 v3 without extensions, RFC 5280 §4.1). */
export function selfSignedCertificate(cn: string): TestKeys {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const serial = randomBytes(8);
  // A positive INTEGER in minimal DER: top bit clear (not negative), next bit set (no leading zero byte to strip).
  serial[0] = ((serial[0] ?? 0) & 0x3f) | 0x40;
  const now = Date.now();
  const tbs = sequence(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    tlv(0x02, serial),
    SHA256_WITH_RSA,
    commonName(cn),
    sequence(utcTime(new Date(now - 3_600_000)), utcTime(new Date(now + 7 * 86_400_000))),
    commonName(cn),
    publicKey.export({ type: 'spki', format: 'der' }),
  );
  const der = sequence(tbs, SHA256_WITH_RSA, tlv(0x03, Buffer.from([0]), sign('sha256', tbs, privateKey)));
  const certificateBase64 = der.toString('base64');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certificatePem: `-----BEGIN CERTIFICATE-----\n${(certificateBase64.match(/.{1,64}/g) ?? []).join('\n')}\n-----END CERTIFICATE-----\n`,
    certificateBase64,
  };
}

/** How the IdP signs: the assertion only (Entra/AD FS default), the response and the assertion, or the response only. */
export type SigningShape = 'assertion' | 'response-and-assertion' | 'response-only';

/** Everything the IdP puts in a response; tests override one field to make the IdP itself sign a bad response. */
export interface ResponseFields {
  /** Our SP metadata (from GET /v1/sso/saml/:id/metadata). */
  spMetadataXml: string;
  acsUrl: string;
  spEntityId: string;
  nameId: string;
  nameIdFormat?: string;
  email?: string | null;
  name?: string | null;
  /** null: an unsolicited (IdP-initiated) response, no InResponseTo anywhere. */
  inResponseTo: string | null;
  /** Overrides (default: the right values, now, +5 minutes). */
  issuer?: string;
  responseIssuer?: string | null;
  audience?: string;
  destination?: string | null;
  recipient?: string;
  scdInResponseTo?: string | null;
  issueInstant?: Date;
  notBefore?: Date;
  notOnOrAfter?: Date;
  scdNotOnOrAfter?: Date;
  assertionId?: string;
  statusCode?: string;
  /** Raw XML appended inside the AttributeStatement (e.g. a large attribute). */
  extraAttributesXml?: string;
  signing?: SigningShape;
}

const escape = (value: string): string =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const attr = (name: string, value: string | null | undefined): string => (value === null || value === undefined ? '' : ` ${name}="${escape(value)}"`);
/** XML-DSig algorithm identifiers (RFC 6931, xmldsig-core). */
export const XMLDSIG = {
  rsaSha1: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
  rsaSha256: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  rsaSha512: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
  rsaPssSha256: 'http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1',
  sha1: 'http://www.w3.org/2000/09/xmldsig#sha1',
  sha256: 'http://www.w3.org/2001/04/xmlenc#sha256',
  sha512: 'http://www.w3.org/2001/04/xmlenc#sha512',
} as const;
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';

export interface DsigAlgorithms {
  signature: string;
  digest: string;
}

export const newSamlId = (): string => `_${randomBytes(16).toString('hex')}`;

export class TestSamlIdp {
  readonly idp: ReturnType<typeof samlify.IdentityProvider>;

  constructor(
    readonly entityId: string,
    readonly keys: TestKeys = selfSignedCertificate('Test IdP'),
    readonly ssoUrl: string = 'https://idp.example.test/saml/sso',
    /** samlify's signing algorithm (its digest follows: rsa-sha1 → sha1). Default RSA-SHA256. */
    signatureAlgorithm: string = XMLDSIG.rsaSha256,
  ) {
    this.idp = samlify.IdentityProvider({
      entityID: entityId,
      privateKey: keys.privateKeyPem,
      signingCert: keys.certificatePem,
      requestSignatureAlgorithm: signatureAlgorithm,
      singleSignOnService: [{ Binding: REDIRECT, Location: ssoUrl }],
      // Only to keep samlify from warning about its absence; never used.
      singleLogoutService: [{ Binding: REDIRECT, Location: `${ssoUrl}/logout` }],
    });
  }

  /** The IdP's metadata, as an admin would download it from the IdP (samlify's own). */
  metadataXml(): string {
    return this.idp.getMetadata();
  }

  /**
   * Receive our AuthnRequest as the IdP does, from the HTTP-Redirect URL our
   * `/v1/sso/start` answered with (samlify inflates and parses it).
   */
  async receiveAuthnRequest(redirectUrl: string, spMetadataXml: string): Promise<{ id: string; issuer: string; acsUrl: string; xml: string }> {
    const url = new URL(redirectUrl);
    const sp = samlify.ServiceProvider({ metadata: spMetadataXml });
    const parsed = await this.idp.parseLoginRequest(sp, 'redirect', { query: Object.fromEntries(url.searchParams), octetString: '' });
    const request = (parsed.extract as { request: { id: string; assertionConsumerServiceUrl: string }; issuer: string }).request;
    return { id: request.id, issuer: (parsed.extract as { issuer: string }).issuer, acsUrl: request.assertionConsumerServiceUrl, xml: parsed.samlContent };
  }

  /** A signed SAMLResponse (base64), as the IdP would auto-POST it. */
  async response(fields: ResponseFields): Promise<string> {
    return this.sign(this.unsignedResponseXml(fields), fields.spMetadataXml, fields.signing ?? 'assertion');
  }

  /**
   * A SAMLResponse (base64) signed with xml-crypto directly, with any pair
   * of signature and digest algorithms (samlify ties the digest to the
   * signature algorithm). `assertion` signs the assertion; `response`, if
   * given, then signs the whole Response too (an enveloped signature after
   * its Issuer, as samlify places it).
   */
  signedWith(fields: ResponseFields, assertion: DsigAlgorithms, response?: DsigAlgorithms): string {
    let xml = this.dsig(this.unsignedResponseXml(fields), "/*[local-name(.)='Response']/*[local-name(.)='Assertion']", assertion);
    if (response) xml = this.dsig(xml, "/*[local-name(.)='Response']", response);
    return encode(xml);
  }

  private dsig(xml: string, elementXpath: string, algorithms: DsigAlgorithms): string {
    const sig = new SignedXml({
      privateKey: this.keys.privateKeyPem,
      publicCert: this.keys.certificatePem,
      signatureAlgorithm: algorithms.signature,
      canonicalizationAlgorithm: EXC_C14N,
    });
    sig.addReference({ xpath: elementXpath, transforms: [ENVELOPED, EXC_C14N], digestAlgorithm: algorithms.digest });
    sig.computeSignature(xml, { prefix: 'ds', location: { reference: `${elementXpath}/*[local-name(.)='Issuer']`, action: 'after' } });
    return sig.getSignedXml();
  }

  private unsignedResponseXml(fields: ResponseFields): string {
    const now = fields.issueInstant ?? new Date();
    const later = new Date(now.getTime() + 5 * 60_000);
    const issuer = fields.issuer ?? this.entityId;
    const responseIssuer = fields.responseIssuer === undefined ? issuer : fields.responseIssuer;
    const id = newSamlId();
    const scdInResponseTo = fields.scdInResponseTo === undefined ? fields.inResponseTo : fields.scdInResponseTo;
    const attributes = [
      fields.email === null || fields.email === undefined ? '' : attribute('email', fields.email),
      fields.name === null || fields.name === undefined ? '' : attribute('displayName', fields.name),
      fields.extraAttributesXml ?? '',
    ].join('');
    const xml =
      `<samlp:Response xmlns:samlp="${NS_PROTOCOL}" xmlns:saml="${NS_ASSERTION}" ID="${id}" Version="2.0" IssueInstant="${now.toISOString()}"` +
      `${attr('Destination', fields.destination === undefined ? fields.acsUrl : fields.destination)}${attr('InResponseTo', fields.inResponseTo)}>` +
      (responseIssuer === null ? '' : `<saml:Issuer>${escape(responseIssuer)}</saml:Issuer>`) +
      `<samlp:Status><samlp:StatusCode Value="${escape(fields.statusCode ?? 'urn:oasis:names:tc:SAML:2.0:status:Success')}"/></samlp:Status>` +
      `<saml:Assertion xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="${escape(fields.assertionId ?? newSamlId())}" Version="2.0" IssueInstant="${now.toISOString()}">` +
      `<saml:Issuer>${escape(issuer)}</saml:Issuer>` +
      `<saml:Subject><saml:NameID Format="${escape(fields.nameIdFormat ?? 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent')}">${escape(fields.nameId)}</saml:NameID>` +
      `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData` +
      `${attr('NotOnOrAfter', (fields.scdNotOnOrAfter ?? later).toISOString())}${attr('Recipient', fields.recipient ?? fields.acsUrl)}${attr('InResponseTo', scdInResponseTo)}/>` +
      `</saml:SubjectConfirmation></saml:Subject>` +
      `<saml:Conditions NotBefore="${(fields.notBefore ?? now).toISOString()}" NotOnOrAfter="${(fields.notOnOrAfter ?? later).toISOString()}">` +
      `<saml:AudienceRestriction><saml:Audience>${escape(fields.audience ?? fields.spEntityId)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
      `<saml:AuthnStatement AuthnInstant="${now.toISOString()}" SessionIndex="${newSamlId()}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
      (attributes === '' ? '' : `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>`) +
      `</saml:Assertion></samlp:Response>`;
    return xml;
  }

  /** Sign `xml` the way samlify signs login responses for an SP with this metadata. */
  async sign(xml: string, spMetadataXml: string, shape: SigningShape): Promise<string> {
    const metadata = shape === 'response-only' ? spMetadataXml.replace('WantAssertionsSigned="true"', 'WantAssertionsSigned="false"') : spMetadataXml;
    const sp = samlify.ServiceProvider({ metadata, wantMessageSigned: shape !== 'assertion' });
    const { context } = await this.idp.createLoginResponse(sp, { extract: {} } as never, 'post', {}, () => ({ id: 'unused', context: xml }));
    return context;
  }
}

function attribute(name: string, value: string): string {
  return `<saml:Attribute Name="${escape(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic"><saml:AttributeValue xsi:type="xs:string">${escape(value)}</saml:AttributeValue></saml:Attribute>`;
}

// --- Attacker tools: work on the decoded XML of a response the IdP signed ---

export const decode = (samlResponse: string): string => Buffer.from(samlResponse, 'base64').toString('utf8');
export const encode = (xml: string): string => Buffer.from(xml, 'utf8').toString('base64');

export function parseXml(xml: string): Document {
  return new DOMParser().parseFromString(xml, 'text/xml') as unknown as Document;
}

export function serialize(doc: Document | Node): string {
  return new XMLSerializer().serializeToString(doc as never);
}

/** Direct children of `parent` named `ns`:`local`. */
export function childrenOf(parent: Element, ns: string, local: string): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) if (n.nodeType === 1 && (n as Element).namespaceURI === ns && (n as Element).localName === local) out.push(n as Element);
  return out;
}

export function firstDescendant(root: Element | Document, ns: string, local: string): Element {
  const found = root.getElementsByTagNameNS(ns, local).item(0);
  if (!found) throw new Error(`no ${local}`);
  return found;
}
