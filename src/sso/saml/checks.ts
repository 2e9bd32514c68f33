import { SsoFailure } from '../failure.js';
import { SAML_CLOCK_SKEW_MS, SAML_MAX_ASSERTION_AGE_MS } from './saml-sp.js';
import {
  attributeOf, attributeValues, children, countDescendants, descendantsByLocalName, isElement, NS, onlyChild, parseStrictXml, textOf, XmlRefused,
} from './xml.js';

/**
 * The checks node-saml 5.1.0 skips on login, and the document-shape checks
 * we add on top of its signature verification (docs/threat-model.md, SAML
 * rows). Pure functions over parsed XML; each throws {@link SsoFailure}
 * with a stable reason.
 */

/** SAML responses larger than this (decoded) are refused before parsing (SECURITY.md "body limits"). */
export const MAX_SAML_RESPONSE_BYTES = 256 * 1024;

const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
const NAMEID_EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
const SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';

/**
 * `SAMLResponse` form value → the response XML, refused before any parsing
 * when it is not base64, larger than {@link MAX_SAML_RESPONSE_BYTES}, or
 * carries a document type declaration (XXE / entity expansion).
 */
export function decodeSamlResponse(encoded: string): string {
  const compact = encoded.replace(/[\r\n\t ]+/g, '');
  if (compact.length > Math.ceil(MAX_SAML_RESPONSE_BYTES / 3) * 4) throw new SsoFailure('response_too_large');
  if (compact === '' || compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) throw new SsoFailure('response_malformed');
  const bytes = Buffer.from(compact, 'base64');
  if (bytes.length > MAX_SAML_RESPONSE_BYTES) throw new SsoFailure('response_too_large');
  const xml = bytes.toString('utf8');
  // Refused before the parser ever sees it (node-saml parses with xmldom and xml2js).
  if (/<!\s*(DOCTYPE|ENTITY)/i.test(xml)) throw new SsoFailure('doctype_refused');
  return xml;
}

/** The unsigned outside of a response: what can be read before the signature is checked. */
export interface ResponseEnvelope {
  inResponseTo: string | null;
  destination: string | null;
  issuer: string | null;
  /** Whether the Response element itself carries a ds:Signature child. */
  signed: boolean;
}

/** Parse the whole response strictly and read its root samlp:Response. */
export function readEnvelope(xml: string): { doc: Document; envelope: ResponseEnvelope } {
  const doc = parseOrFail(xml);
  const root = doc.documentElement;
  if (!isElement(root, NS.protocol, 'Response')) throw new SsoFailure('response_malformed');
  const issuer = onlyChild(root, NS.assertion, 'Issuer');
  if (issuer === 'many') throw new SsoFailure('response_malformed');
  return {
    doc,
    envelope: {
      inResponseTo: attributeOf(root, 'InResponseTo'),
      destination: attributeOf(root, 'Destination'),
      issuer: issuer ? textOf(issuer).trim() : null,
      signed: children(root, NS.dsig, 'Signature').length > 0,
    },
  };
}

/**
 * Response-level checks (saml-core §3.2.2, saml-bindings §3.5.5.2):
 * - Status is Success;
 * - Destination, when present, is exactly our ACS URL; a signed Response
 *   must carry it (node-saml does not check Destination);
 * - the Response Issuer, when present, is the connection's IdP.
 */
export function checkEnvelope(doc: Document, envelope: ResponseEnvelope, expected: { acsUrl: string; idpEntityId: string }): void {
  const status = onlyChild(doc.documentElement, NS.protocol, 'Status');
  const code = status && status !== 'many' ? onlyChild(status, NS.protocol, 'StatusCode') : null;
  if (!code || code === 'many' || attributeOf(code, 'Value') !== SUCCESS) throw new SsoFailure('idp_status_error', 'Your identity provider refused the sign-in.');
  if (envelope.destination === null ? envelope.signed : envelope.destination !== expected.acsUrl) {
    throw new SsoFailure('destination_mismatch');
  }
  if (envelope.issuer !== null && envelope.issuer !== expected.idpEntityId) throw new SsoFailure('issuer_mismatch');
}

/**
 * Document shape after signature verification, against signature
 * wrapping (XSW, "On Breaking SAML", USENIX Security 2012): exactly one
 * saml:Assertion in the whole document, a direct child of the Response;
 * no EncryptedAssertion (not supported); no two elements with the same ID.
 * node-saml already reads only the signed bytes; a second assertion
 * anywhere means someone rearranged the message, and it is refused rather
 * than interpreted.
 */
export function checkDocumentShape(doc: Document): void {
  const root = doc.documentElement;
  const direct = children(root, NS.assertion, 'Assertion').length;
  if (countDescendants(root, NS.assertion, 'Assertion') !== 1 || direct !== 1) throw new SsoFailure('assertion_misplaced');
  if (countDescendants(root, NS.assertion, 'EncryptedAssertion') > 0) throw new SsoFailure('encrypted_assertion_unsupported');
  const ids = attributeValues(root, 'ID');
  if (new Set(ids).size !== ids.length) throw new SsoFailure('duplicate_id');
}

/**
 * XML-DSig algorithms we accept (RFC 6931 §2.1.3, §2.2.2, §2.3.5; the PSS
 * URI: xmldsig-core §6.4.2, xmldsig-more 2007-05). SHA-1 is refused for
 * signatures and digests alike (NIST SP 800-131A Rev. 2 §9: SHA-1 is
 * disallowed for digital signature generation; chosen-prefix collisions,
 * "SHA-1 is a Shambles", USENIX Security 2020), and so is DSA. Anything not
 * listed is refused too. xml-crypto 6 has no allow-list for verification
 * (it accepts rsa-sha1 and sha1) and node-saml 5.1 builds its verifier
 * without options; `signatureAlgorithm` in node-saml's config is only for
 * signing our own requests.
 */
const ACCEPTED_SIGNATURE_ALGORITHMS: readonly string[] = [
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
  'http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512',
];
const ACCEPTED_DIGEST_ALGORITHMS: readonly string[] = [
  'http://www.w3.org/2001/04/xmlenc#sha256',
  'http://www.w3.org/2001/04/xmldsig-more#sha384',
  'http://www.w3.org/2001/04/xmlenc#sha512',
];

/**
 * Signature and digest algorithms, after node-saml verified the signatures.
 * The enveloped-signature transform removes ds:Signature from the verified
 * assertion bytes, so the algorithms are read from the document node-saml
 * verified (the same bytes, parsed strictly): EVERY `SignatureMethod` and
 * `DigestMethod`, in any namespace and wherever it sits, must name an
 * accepted algorithm. That covers the assertion's signature, the
 * Response's (whose verified bytes node-saml prefers when it is valid),
 * and anything xml-crypto could pick by local name; an element without an
 * `Algorithm` is refused too.
 */
export function checkSignatureAlgorithms(doc: Document): void {
  const root = doc.documentElement;
  for (const method of descendantsByLocalName(root, 'SignatureMethod')) {
    if (!ACCEPTED_SIGNATURE_ALGORITHMS.includes(attributeOf(method, 'Algorithm') ?? '')) {
      throw new SsoFailure('signature_algorithm_refused', ALGORITHM_REFUSED, { algorithm: (attributeOf(method, 'Algorithm') ?? '').slice(0, 100) });
    }
  }
  for (const method of descendantsByLocalName(root, 'DigestMethod')) {
    if (!ACCEPTED_DIGEST_ALGORITHMS.includes(attributeOf(method, 'Algorithm') ?? '')) {
      throw new SsoFailure('digest_algorithm_refused', ALGORITHM_REFUSED, { algorithm: (attributeOf(method, 'Algorithm') ?? '').slice(0, 100) });
    }
  }
}

const ALGORITHM_REFUSED = 'Your identity provider signed the sign-in with an algorithm this service does not accept (such as SHA-1). Its administrator must sign with SHA-256 or stronger.';

/** What a verified assertion says, after our checks. */
export interface CheckedAssertion {
  assertionId: string;
  /** NameID, its whole text (comments skipped, never a truncated value). */
  nameId: string;
  nameIdFormat: string | null;
  attributes: Map<string, string[]>;
  /** Until when this assertion could be accepted (replay cache keeps its id that long). */
  acceptableUntil: Date;
}

export interface AssertionExpectations {
  idpEntityId: string;
  acsUrl: string;
  /** The Response's InResponseTo (null for an unsolicited response). */
  inResponseTo: string | null;
  now: Date;
}

/**
 * Checks on the assertion node-saml verified (`assertionXml` is built from
 * the signed bytes only), with OUR clock (node-saml uses the system clock):
 * - Issuer = the connection's IdP entity id (saml-profiles §4.1.4.2; node-saml
 *   checks `idpIssuer` only for logout);
 * - a bearer SubjectConfirmation whose SubjectConfirmationData has Recipient
 *   = our ACS URL (node-saml does not check it), NotOnOrAfter in the future
 *   (node-saml skips this for unsolicited responses), NotBefore absent or
 *   past, and InResponseTo equal to the Response's (absent for unsolicited);
 * - Conditions NotBefore/NotOnOrAfter and IssueInstant no older than 10
 *   minutes (node-saml checks these too, with the system clock);
 * all with {@link SAML_CLOCK_SKEW_MS} of skew.
 */
export function checkAssertion(assertionXml: string, expected: AssertionExpectations): CheckedAssertion {
  const assertion = parseOrFail(assertionXml).documentElement;
  if (!isElement(assertion, NS.assertion, 'Assertion')) throw new SsoFailure('assertion_missing');
  const now = expected.now.getTime();
  const skew = SAML_CLOCK_SKEW_MS;

  const assertionId = attributeOf(assertion, 'ID') ?? '';
  if (assertionId === '' || assertionId.length > 256) throw new SsoFailure('assertion_malformed');

  const issuer = onlyChild(assertion, NS.assertion, 'Issuer');
  if (!issuer || issuer === 'many' || textOf(issuer).trim() !== expected.idpEntityId) throw new SsoFailure('issuer_mismatch');

  const issueInstant = time(attributeOf(assertion, 'IssueInstant'));
  if (issueInstant === null) throw new SsoFailure('assertion_malformed');
  if (issueInstant - skew > now) throw new SsoFailure('assertion_not_yet_valid');
  const tooOldAt = issueInstant + SAML_MAX_ASSERTION_AGE_MS;

  // Subject: exactly one NameID and the bearer confirmation.
  const subject = onlyChild(assertion, NS.assertion, 'Subject');
  if (!subject || subject === 'many') throw new SsoFailure('subject_missing');
  const nameIdElement = onlyChild(subject, NS.assertion, 'NameID');
  if (!nameIdElement || nameIdElement === 'many') throw new SsoFailure('name_id_missing');
  const nameId = textOf(nameIdElement).trim();
  if (nameId === '' || nameId.length > 1024) throw new SsoFailure('name_id_missing');

  const bearers = children(subject, NS.assertion, 'SubjectConfirmation').filter((c) => attributeOf(c, 'Method') === BEARER);
  if (bearers.length === 0) throw new SsoFailure('subject_confirmation_invalid');
  // saml-profiles §4.1.4.2: at least one bearer confirmation must satisfy everything; report the first problem otherwise.
  let confirmedUntil: number | null = null;
  let problem: string | null = null;
  for (const bearer of bearers) {
    const data = onlyChild(bearer, NS.assertion, 'SubjectConfirmationData');
    const reason = bearerProblem(data === 'many' ? null : data, expected, now, skew);
    if (reason === null && data && data !== 'many') {
      confirmedUntil = time(attributeOf(data, 'NotOnOrAfter'));
      break;
    }
    problem ??= reason;
  }
  if (confirmedUntil === null) throw new SsoFailure(problem ?? 'subject_confirmation_invalid');

  // Conditions (saml-core §2.5.1) times; the AudienceRestriction is node-saml's (`audience` = our entity id).
  const conditions = onlyChild(assertion, NS.assertion, 'Conditions');
  if (conditions === 'many') throw new SsoFailure('assertion_malformed');
  if (!conditions) throw new SsoFailure('audience_mismatch');
  const notBefore = time(attributeOf(conditions, 'NotBefore'));
  const notOnOrAfter = time(attributeOf(conditions, 'NotOnOrAfter'));
  if (notBefore !== null && notBefore - skew > now) throw new SsoFailure('assertion_not_yet_valid');
  if ((notOnOrAfter !== null && now >= notOnOrAfter + skew) || now >= tooOldAt + skew) throw new SsoFailure('assertion_expired');

  const until = Math.min(confirmedUntil, notOnOrAfter ?? confirmedUntil, tooOldAt);
  return {
    assertionId,
    nameId,
    nameIdFormat: attributeOf(nameIdElement, 'Format'),
    attributes: readAttributes(assertion),
    acceptableUntil: new Date(until + skew),
  };
}

function bearerProblem(data: Element | null, expected: AssertionExpectations, now: number, skew: number): string | null {
  if (!data) return 'subject_confirmation_invalid';
  if (attributeOf(data, 'Recipient') !== expected.acsUrl) return 'recipient_mismatch';
  const notOnOrAfter = time(attributeOf(data, 'NotOnOrAfter'));
  if (notOnOrAfter === null) return 'subject_confirmation_invalid';
  if (now >= notOnOrAfter + skew) return 'subject_confirmation_expired';
  const notBefore = time(attributeOf(data, 'NotBefore'));
  if (notBefore !== null && notBefore - skew > now) return 'subject_confirmation_invalid';
  if (attributeOf(data, 'InResponseTo') !== expected.inResponseTo) return 'in_response_to_mismatch';
  return null;
}

/** Attribute name → its values (saml-core §2.7.3.1), direct children of AttributeStatement only. */
function readAttributes(assertion: Element): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const statement of children(assertion, NS.assertion, 'AttributeStatement')) {
    for (const attribute of children(statement, NS.assertion, 'Attribute')) {
      const name = attributeOf(attribute, 'Name');
      if (!name) continue;
      const values = children(attribute, NS.assertion, 'AttributeValue').map((v) => textOf(v).trim());
      out.set(name, [...(out.get(name) ?? []), ...values]);
    }
  }
  return out;
}

const EMAIL_ATTRIBUTES = [
  'email',
  'mail',
  'emailaddress',
  'urn:oid:0.9.2342.19200300.100.1.3',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
];
const NAME_ATTRIBUTES = [
  'name',
  'displayname',
  'urn:oid:2.16.840.1.113730.3.1.241',
  'http://schemas.microsoft.com/identity/claims/displayname',
];

/** The email the assertion asserts: a well-known email attribute, else an emailAddress-format NameID. */
export function assertedEmail(assertion: CheckedAssertion): string | null {
  const value = firstValue(assertion.attributes, EMAIL_ATTRIBUTES);
  if (value !== null) return value;
  return assertion.nameIdFormat === NAMEID_EMAIL ? assertion.nameId : null;
}

export function assertedName(assertion: CheckedAssertion): string | null {
  return firstValue(assertion.attributes, NAME_ATTRIBUTES);
}

function firstValue(attributes: Map<string, string[]>, names: string[]): string | null {
  for (const wanted of names) {
    for (const [name, values] of attributes) {
      if (name.toLowerCase() !== wanted) continue;
      const value = values.find((v) => v !== '');
      if (value !== undefined) return value.length <= 320 ? value : null;
    }
  }
  return null;
}

function parseOrFail(xml: string): Document {
  try {
    return parseStrictXml(xml);
  } catch (error) {
    if (error instanceof XmlRefused) throw new SsoFailure(error.reason === 'doctype_refused' ? 'doctype_refused' : 'response_malformed');
    throw error;
  }
}

/** xs:dateTime → epoch ms; null when absent or unparseable. */
function time(value: string | null): number | null {
  if (value === null) return null;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value)) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}
