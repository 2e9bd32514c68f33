import { afterEach, describe, expect, it } from 'vitest';
import { asUser, auditActions } from '../helpers/app.js';
import { ACS_BODY_LIMIT } from '../../src/sso/saml/routes.js';
import { checkSignatureAlgorithms, readEnvelope } from '../../src/sso/saml/checks.js';
import { SsoFailure } from '../../src/sso/failure.js';
import {
  expectRefused, fieldsFor, lastSamlFailureReason, postAcs, samlConnectionFor, samlLogins, samlWorld, startSaml, type SamlConnection, type SamlWorld,
} from '../helpers/saml.js';
import { decode, encode, NS_DSIG, parseXml, selfSignedCertificate, serialize, TestSamlIdp, XMLDSIG } from '../helpers/saml-idp.js';
import { enterpriseOwner, verifyDomain } from '../helpers/sso.js';

/**
 * Attacks on the SAML ACS, each refused with `400 sso_failed`, audited
 * with its reason, no session. Where the IdP itself must sign the bad
 * response (wrong audience, expired, wrong Recipient…), samlify signs it
 * with the override; tampering cases edit a response after signing.
 *
 * Time: node-saml judges time by the system clock, our checks by the app's
 * clock. Where both check the same thing, one test per layer isolates it:
 * "by node-saml" signs a response already expired in real time and sets our
 * clock back so that only node-saml can refuse; "by our clock" signs a
 * response valid in real time and moves only our clock.
 */

let w: SamlWorld;
afterEach(async () => {
  await w.t.close();
});

const MINUTE = 60_000;
const ago = (minutes: number): Date => new Date(Date.now() - minutes * MINUTE);
const later = (minutes: number): Date => new Date(Date.now() + minutes * MINUTE);

async function solicited(overrides: Parameters<typeof fieldsFor>[2] = {}, world: SamlWorld = w): Promise<string> {
  const requestId = await startSaml(world.t, world.idp, world.connection);
  return world.idp.response(fieldsFor(world.connection, requestId, overrides));
}

function editXml(samlResponse: string, edit: (xml: string) => string): string {
  const xml = decode(samlResponse);
  const edited = edit(xml);
  expect(edited).not.toBe(xml);
  return encode(edited);
}

describe('tampering and forged signatures', () => {
  /** Attribute changed after signing: the digest no longer matches. */
  it('refuses a response whose email attribute was changed after signing', async () => {
    w = await samlWorld();
    const forged = editXml(await solicited({ email: 'mallory@acme.test' }), (xml) => xml.replace('>mallory@acme.test<', '>owner@acme.test<'));
    expectRefused(w.t, await postAcs(w.t, w.connection, forged), 'signature_invalid');
  });

  /** Signature stripping: an unsigned response is never accepted. */
  it('refuses a response with every signature removed', async () => {
    w = await samlWorld();
    const doc = parseXml(decode(await solicited({ signing: 'response-and-assertion' })));
    const signatures = doc.getElementsByTagNameNS(NS_DSIG, 'Signature');
    while (signatures.length > 0) signatures.item(0)?.parentNode?.removeChild(signatures.item(0) as Node);
    expectRefused(w.t, await postAcs(w.t, w.connection, encode(serialize(doc))), 'signature_invalid');
  });

  /**
   * Attacker key with its own KeyInfo certificate (CVE-2024-32962 class):
   * only the connection's certificates count, never the one in the message.
   */
  it('refuses a response re-signed with an attacker key carrying its own certificate in KeyInfo', async () => {
    w = await samlWorld();
    const attacker = new TestSamlIdp(w.idp.entityId, selfSignedCertificate('Test IdP'));
    const requestId = await startSaml(w.t, w.idp, w.connection);
    const forged = await attacker.response({ ...fieldsFor(w.connection, requestId, { nameId: 'owner', email: 'owner@acme.test' }), signing: 'response-and-assertion' });
    expect(decode(forged)).toContain(attacker.keys.certificateBase64);
    expectRefused(w.t, await postAcs(w.t, w.connection, forged), 'signature_invalid');
  });
});

/**
 * SHA-1 signatures and digests (NIST SP 800-131A Rev. 2: SHA-1 disallowed
 * for signatures; chosen-prefix collisions make a SHA-1 digest or signature
 * something an attacker can aim at). Signed by the connection's real key,
 * so only the algorithm check can refuse them; xml-crypto accepts both and
 * node-saml offers no allow-list. The signature and the digest algorithm
 * are tested apart (xml-crypto signs any pair), the Response signature
 * apart from the assertion's (node-saml prefers the Response's verified
 * bytes), and SHA-256/512 still pass.
 */
describe('weak signature algorithms', () => {
  async function solicitedFields(): Promise<ReturnType<typeof fieldsFor>> {
    return fieldsFor(w.connection, await startSaml(w.t, w.idp, w.connection));
  }

  it('refuses an assertion signed by the trusted IdP with RSA-SHA1 and SHA-1 digests (samlify)', async () => {
    const keys = selfSignedCertificate('Test IdP');
    w = await samlWorld({ idp: new TestSamlIdp('https://idp.example.test/metadata', keys, undefined, XMLDSIG.rsaSha1) });
    const response = await w.idp.response(await solicitedFields());
    expect(decode(response)).toContain(`Algorithm="${XMLDSIG.rsaSha1}"`);
    expectRefused(w.t, await postAcs(w.t, w.connection, response), 'signature_algorithm_refused');
    expect(samlLogins(w.t)).toBe(0);
  });

  it('refuses an RSA-SHA1 signature over a SHA-256 digest', async () => {
    w = await samlWorld();
    const response = w.idp.signedWith(await solicitedFields(), { signature: XMLDSIG.rsaSha1, digest: XMLDSIG.sha256 });
    expectRefused(w.t, await postAcs(w.t, w.connection, response), 'signature_algorithm_refused');
  });

  it('refuses an RSA-SHA256 signature over a SHA-1 digest', async () => {
    w = await samlWorld();
    const response = w.idp.signedWith(await solicitedFields(), { signature: XMLDSIG.rsaSha256, digest: XMLDSIG.sha1 });
    expectRefused(w.t, await postAcs(w.t, w.connection, response), 'digest_algorithm_refused');
  });

  it('refuses a SHA-256 assertion inside a Response signed with RSA-SHA1', async () => {
    w = await samlWorld();
    const strong = { signature: XMLDSIG.rsaSha256, digest: XMLDSIG.sha256 };
    const response = w.idp.signedWith(await solicitedFields(), strong, { signature: XMLDSIG.rsaSha1, digest: XMLDSIG.sha1 });
    expectRefused(w.t, await postAcs(w.t, w.connection, response), 'signature_algorithm_refused');
  });

  it.each([
    ['RSA-SHA256 / SHA-256', XMLDSIG.rsaSha256, XMLDSIG.sha256],
    ['RSA-SHA512 / SHA-512', XMLDSIG.rsaSha512, XMLDSIG.sha512],
  ])('accepts %s (xml-crypto, assertion and Response signed)', async (_label, signature, digest) => {
    w = await samlWorld();
    const response = w.idp.signedWith(await solicitedFields(), { signature, digest }, { signature, digest });
    const accepted = await postAcs(w.t, w.connection, response);
    expect(accepted.statusCode, accepted.body).toBe(302);
  });

  /**
   * The check alone, on a genuinely signed document edited afterwards: it
   * holds for every SignatureMethod/DigestMethod, whatever its namespace
   * (xml-crypto picks them by local name), and an absent Algorithm fails.
   */
  it.each([
    ['DSA-SHA1', (x: string) => x.replace(XMLDSIG.rsaSha256, 'http://www.w3.org/2000/09/xmldsig#dsa-sha1'), 'signature_algorithm_refused'],
    ['HMAC-SHA256', (x: string) => x.replace(XMLDSIG.rsaSha256, 'http://www.w3.org/2001/04/xmldsig-more#hmac-sha256'), 'signature_algorithm_refused'],
    ['MD5 digest', (x: string) => x.replace(XMLDSIG.sha256, 'http://www.w3.org/2001/04/xmldsig-more#md5'), 'digest_algorithm_refused'],
    ['a SignatureMethod without Algorithm', (x: string) => x.replace(`Algorithm="${XMLDSIG.rsaSha256}"`, ''), 'signature_algorithm_refused'],
    [
      'a SHA-1 DigestMethod in another namespace',
      (x: string) => x.replace('</saml:Issuer>', `</saml:Issuer><x:DigestMethod xmlns:x="urn:example" Algorithm="${XMLDSIG.sha1}"/>`),
      'digest_algorithm_refused',
    ],
  ] as const)('checkSignatureAlgorithms refuses %s', async (_label, edit, reason) => {
    w = await samlWorld();
    const signed = decode(w.idp.signedWith(fieldsFor(w.connection, null), { signature: XMLDSIG.rsaSha256, digest: XMLDSIG.sha256 }));
    expect(() => checkSignatureAlgorithms(readEnvelope(signed).doc)).not.toThrow();
    const edited = edit(signed);
    expect(edited).not.toBe(signed);
    let refused: string | null = null;
    try {
      checkSignatureAlgorithms(readEnvelope(edited).doc);
    } catch (error) {
      refused = error instanceof SsoFailure ? error.reason : String(error);
    }
    expect(refused).toBe(reason);
  });

  it('accepts RSASSA-PSS SHA-256 (samlify)', async () => {
    w = await samlWorld({ idp: new TestSamlIdp('https://idp.example.test/metadata', undefined, undefined, XMLDSIG.rsaPssSha256) });
    const accepted = await postAcs(w.t, w.connection, await w.idp.response(await solicitedFields()));
    expect(accepted.statusCode, accepted.body).toBe(302);
  });
});

describe('addressed to someone else', () => {
  /**
   * Two organizations trusting the same IdP (same key): only our
   * per-connection audience keeps org B's assertion out of org A
   * (docs/threat-model.md; notes pitfall 6). The IdP signs everything right
   * for A except the Audience, which is B's.
   */
  it("refuses an assertion whose Audience is another connection's entity id", async () => {
    w = await samlWorld();
    const other = await samlConnectionFor(w.t, await enterpriseOwner(w.t), w.idp);
    expectRefused(w.t, await postAcs(w.t, w.connection, await solicited({ audience: other.spEntityId })), 'audience_mismatch');
  });

  /** IdP confusion across tenants: org B's genuine response, delivered to org A's ACS. */
  it("refuses org B's response posted to org A's ACS, solicited or not", async () => {
    w = await samlWorld({ allowIdpInitiatedSaml: true });
    const ownerB = await enterpriseOwner(w.t, { email: 'owner@beta.test' });
    await verifyDomain(w.t, ownerB, 'beta.test');
    const b: SamlConnection = await samlConnectionFor(w.t, ownerB, w.idp, { domains: ['beta.test'], allowIdpInitiatedSaml: true });
    const forB = await w.idp.response(fieldsFor(b, await startSaml(w.t, w.idp, b), { nameId: 'bob', email: 'bob@beta.test' }));
    expectRefused(w.t, await postAcs(w.t, w.connection, forB), 'request_unknown');
    const unsolicitedForB = await w.idp.response(fieldsFor(b, null, { nameId: 'bob', email: 'bob@beta.test' }));
    expectRefused(w.t, await postAcs(w.t, w.connection, unsolicitedForB), 'destination_mismatch');
    expect(samlLogins(w.t)).toBe(0);
    // Delivered where it belongs, it works (the refusals above are about the address, not the response).
    expect((await postAcs(w.t, b, forB)).statusCode).toBe(302);
  });

  /** node-saml does not check Recipient: ours does (saml-profiles §4.1.4.2). */
  it('refuses a SubjectConfirmationData Recipient that is not our ACS', async () => {
    w = await samlWorld();
    expectRefused(w.t, await postAcs(w.t, w.connection, await solicited({ recipient: 'https://sp.other.test/acs' })), 'recipient_mismatch');
  });

  /** node-saml does not check Destination: ours does (saml-bindings §3.5.5.2). */
  it('refuses a Response Destination that is not our ACS, and a signed Response without one', async () => {
    w = await samlWorld();
    expectRefused(w.t, await postAcs(w.t, w.connection, await solicited({ destination: 'https://sp.other.test/acs' })), 'destination_mismatch');
    expectRefused(w.t, await postAcs(w.t, w.connection, await solicited({ destination: null, signing: 'response-and-assertion' })), 'destination_mismatch');
  });

  /** node-saml checks the Issuer only on logout: ours checks it on login. */
  it("refuses an assertion Issuer that is not the connection's IdP, even signed with its key", async () => {
    w = await samlWorld();
    expectRefused(w.t, await postAcs(w.t, w.connection, await solicited({ issuer: 'https://other-idp.test', responseIssuer: w.idp.entityId })), 'issuer_mismatch');
    expectRefused(w.t, await postAcs(w.t, w.connection, await solicited({ responseIssuer: 'https://other-idp.test' })), 'issuer_mismatch');
  });
});

describe('time', () => {
  it('refuses an expired assertion — by node-saml (system clock)', async () => {
    w = await samlWorld();
    const requestId = await startSaml(w.t, w.idp, w.connection);
    const expired = await w.idp.response(fieldsFor(w.connection, requestId, { issueInstant: ago(8), notBefore: ago(8), notOnOrAfter: ago(2), scdNotOnOrAfter: later(5) }));
    w.t.clock.set(ago(5)); // our checks would accept: only node-saml can refuse
    expectRefused(w.t, await postAcs(w.t, w.connection, expired), 'assertion_expired');
  });

  it('refuses an expired assertion — by our clock', async () => {
    w = await samlWorld();
    const requestId = await startSaml(w.t, w.idp, w.connection);
    const response = await w.idp.response(fieldsFor(w.connection, requestId, { notOnOrAfter: later(3), scdNotOnOrAfter: later(9) }));
    w.t.clock.advance(5 * MINUTE); // valid in real time, so node-saml accepts
    expectRefused(w.t, await postAcs(w.t, w.connection, response), 'assertion_expired');
  });

  it('refuses an expired SubjectConfirmationData — by node-saml (system clock)', async () => {
    w = await samlWorld();
    const requestId = await startSaml(w.t, w.idp, w.connection);
    const expired = await w.idp.response(fieldsFor(w.connection, requestId, { issueInstant: ago(4), notBefore: ago(4), notOnOrAfter: later(5), scdNotOnOrAfter: ago(2) }));
    w.t.clock.set(ago(5));
    expectRefused(w.t, await postAcs(w.t, w.connection, expired), 'subject_confirmation_invalid');
  });

  it('refuses an expired SubjectConfirmationData — by our clock', async () => {
    w = await samlWorld();
    const requestId = await startSaml(w.t, w.idp, w.connection);
    const response = await w.idp.response(fieldsFor(w.connection, requestId, { notOnOrAfter: later(9), scdNotOnOrAfter: later(3) }));
    w.t.clock.advance(5 * MINUTE);
    expectRefused(w.t, await postAcs(w.t, w.connection, response), 'subject_confirmation_expired');
  });

  /** node-saml skips SubjectConfirmationData times for unsolicited responses: ours does not. */
  it('refuses an unsolicited response with an expired SubjectConfirmationData', async () => {
    w = await samlWorld({ allowIdpInitiatedSaml: true });
    const expired = await w.idp.response(fieldsFor(w.connection, null, { issueInstant: ago(4), notBefore: ago(4), notOnOrAfter: later(5), scdNotOnOrAfter: ago(2) }));
    expectRefused(w.t, await postAcs(w.t, w.connection, expired), 'subject_confirmation_expired');
  });

  it('refuses a response to an AuthnRequest older than 10 minutes', async () => {
    w = await samlWorld();
    const requestId = await startSaml(w.t, w.idp, w.connection);
    w.t.clock.advance(11 * MINUTE);
    // Signed now (valid in real time): only the stored request's expiry can refuse it.
    expectRefused(w.t, await postAcs(w.t, w.connection, await w.idp.response(fieldsFor(w.connection, requestId))), 'transaction_expired');
  });
});

describe('solicited, unsolicited, replayed', () => {
  it('refuses an unsolicited response on a connection without IdP-initiated login (the default)', async () => {
    w = await samlWorld();
    expectRefused(w.t, await postAcs(w.t, w.connection, await w.idp.response(fieldsFor(w.connection, null))), 'unsolicited_response');
  });

  it('refuses an InResponseTo we never issued, and a SubjectConfirmationData InResponseTo that differs from the Response', async () => {
    w = await samlWorld();
    expectRefused(w.t, await postAcs(w.t, w.connection, await w.idp.response(fieldsFor(w.connection, '_made_up_request_id'))), 'request_unknown');
    const requestId = await startSaml(w.t, w.idp, w.connection);
    const other = await startSaml(w.t, w.idp, w.connection);
    expectRefused(w.t, await postAcs(w.t, w.connection, await w.idp.response(fieldsFor(w.connection, requestId, { scdInResponseTo: other }))), 'in_response_to_mismatch');
  });

  /** Replay of a used SP-initiated response: its request id is single-use. */
  it('refuses a replayed SP-initiated response', async () => {
    w = await samlWorld();
    const response = await solicited();
    expect((await postAcs(w.t, w.connection, response)).statusCode).toBe(302);
    expectRefused(w.t, await postAcs(w.t, w.connection, response), 'request_reused');
    expect(samlLogins(w.t)).toBe(1);
  });

  it('lets exactly one of two concurrent posts of the same response log in', async () => {
    w = await samlWorld();
    const response = await solicited();
    const results = await Promise.all([postAcs(w.t, w.connection, response), postAcs(w.t, w.connection, response), postAcs(w.t, w.connection, response)]);
    expect(results.map((r) => r.statusCode).sort()).toEqual([302, 400, 400]);
    expect(samlLogins(w.t)).toBe(1);
  });

  /** Replay of a used IdP-initiated response: only the persistent assertion-id cache stands in the way. */
  it('refuses a replayed IdP-initiated response (persistent assertion replay cache)', async () => {
    w = await samlWorld({ allowIdpInitiatedSaml: true });
    const response = await w.idp.response(fieldsFor(w.connection, null));
    expect((await postAcs(w.t, w.connection, response)).statusCode).toBe(302);
    expectRefused(w.t, await postAcs(w.t, w.connection, response), 'assertion_replayed');
    const row = w.t.services.database.sqlite.prepare('SELECT connection_id, expires_at, seen_at FROM saml_seen_assertions').get() as { connection_id: string; expires_at: number; seen_at: number };
    expect(row.connection_id).toBe(w.connection.id);
    expect(row.expires_at).toBeGreaterThan(row.seen_at);
  });

  it('refuses an assertion id seen before even inside a new, correctly solicited response', async () => {
    w = await samlWorld();
    const first = await solicited({ assertionId: '_fixed_assertion_id' });
    expect((await postAcs(w.t, w.connection, first)).statusCode).toBe(302);
    expectRefused(w.t, await postAcs(w.t, w.connection, await solicited({ assertionId: '_fixed_assertion_id' })), 'assertion_replayed');
  });
});

describe('NameID comment injection (CVE-2017-11428 class)', () => {
  /**
   * The attacker holds `admin@acme.test.evil.test` at the IdP, gets it
   * signed, then inserts a comment: `admin@acme.test<!---->.evil.test`.
   * Exclusive canonicalization drops comments, so the signature still
   * verifies; a reader that stops at the first text node would see
   * `admin@acme.test` — someone else's identity. The full value is used.
   */
  it("never truncates the NameID at a comment, so it cannot become another user's subject", async () => {
    w = await samlWorld();
    const admin = await postAcs(w.t, w.connection, await solicited({ nameId: 'admin@acme.test', email: 'admin@acme.test' }));
    expect(admin.statusCode).toBe(302);
    const forged = editXml(await solicited({ nameId: 'admin@acme.test.evil.test', email: 'admin@acme.test.evil.test' }), (xml) =>
      xml.replace('>admin@acme.test.evil.test</saml:NameID>', '>admin@acme.test<!---->.evil.test</saml:NameID>'),
    );
    // The full value has no identity and its domain is not the organization's: refused, not logged in as admin.
    expectRefused(w.t, await postAcs(w.t, w.connection, forged), 'domain_not_in_connection');
    expect(samlLogins(w.t)).toBe(1);
  });

  it('reads a NameID split by a comment as the whole signed value', async () => {
    w = await samlWorld();
    const split = editXml(await solicited({ nameId: 'frank-123', email: 'frank@acme.test' }), (xml) => xml.replace('>frank-123<', '>frank<!-- x -->-123<'));
    const acs = await postAcs(w.t, w.connection, split);
    expect(acs.statusCode, acs.body).toBe(302);
    expect(w.t.services.database.sqlite.prepare('SELECT subject FROM sso_identities').all()).toEqual([{ subject: 'frank-123' }]);
  });
});

describe('hostile XML', () => {
  /** XXE and entity expansion ("billion laughs"): a DTD is refused before any parser sees the message. */
  it.each([
    ['billion laughs', '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><r>&c;</r>'],
    ['an external entity (XXE)', '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&xxe;</samlp:Response>'],
    ['a lower-case doctype', '<!doctype r><r/>'],
  ])('refuses %s', async (_label, xml) => {
    w = await samlWorld();
    expectRefused(w.t, await postAcs(w.t, w.connection, encode(xml)), 'doctype_refused');
  });

  it('refuses a DOCTYPE added in front of a genuinely signed response', async () => {
    w = await samlWorld();
    const withDoctype = editXml(await solicited(), (xml) => `<!DOCTYPE samlp:Response [<!ENTITY who "owner@acme.test">]>${xml}`);
    expectRefused(w.t, await postAcs(w.t, w.connection, withDoctype), 'doctype_refused');
  });

  it('refuses a response over 256 KiB before parsing (400), and a body over the form limit outright (413)', async () => {
    w = await samlWorld();
    const padding = `<saml:Attribute Name="padding"><saml:AttributeValue>${'x'.repeat(300 * 1024)}</saml:AttributeValue></saml:Attribute>`;
    const big = await solicited({ extraAttributesXml: padding });
    expectRefused(w.t, await postAcs(w.t, w.connection, big), 'response_too_large');
    const huge = await postAcs(w.t, w.connection, 'A'.repeat(ACS_BODY_LIMIT + 1));
    expect(huge.statusCode).toBe(413);
  });

  it('refuses a SAMLResponse that is not base64 or not XML', async () => {
    w = await samlWorld();
    expectRefused(w.t, await postAcs(w.t, w.connection, 'not base64 at all!'), 'response_malformed');
    expectRefused(w.t, await postAcs(w.t, w.connection, encode('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">')), 'response_malformed');
    expectRefused(w.t, await postAcs(w.t, w.connection, encode('<a/><b/>')), 'response_malformed');
  });
});

describe('connection state', () => {
  it('refuses an unknown connection, a disabled one, and one whose organization lost feature sso', async () => {
    w = await samlWorld();
    const response = await solicited();
    expectRefused(w.t, await postAcs(w.t, { acsUrl: 'http://localhost:3000/v1/sso/saml/unknown-connection/acs' }, response), 'connection_missing');
    const url = `/v1/orgs/${w.owner.orgId}/sso/connections/${w.connection.id}`;
    expect((await w.t.app.inject({ method: 'PATCH', url, ...asUser(w.owner.token), payload: { enabled: false } })).statusCode).toBe(200);
    expectRefused(w.t, await postAcs(w.t, w.connection, response), 'connection_disabled');
    expect((await w.t.app.inject({ method: 'PATCH', url, ...asUser(w.owner.token), payload: { enabled: true } })).statusCode).toBe(200);
    await w.t.services.orgs.setPlan(w.owner.orgId, 'free', { type: 'system', id: null });
    expectRefused(w.t, await postAcs(w.t, w.connection, response), 'plan_lacks_sso');
    expect(auditActions(w.t).filter((a) => a === 'auth.login.failed')).toHaveLength(3);
  });

  it('refuses an IdP error status', async () => {
    w = await samlWorld();
    expectRefused(w.t, await postAcs(w.t, w.connection, await solicited({ statusCode: 'urn:oasis:names:tc:SAML:2.0:status:Responder' })), 'idp_status_error');
  });
});

describe('audit and logs', () => {
  it('audits each refusal with the connection, the organization and the reason — never the XML', async () => {
    w = await samlWorld();
    const forged = editXml(await solicited({ email: 'mallory@acme.test' }), (xml) => xml.replace('>mallory@acme.test<', '>owner@acme.test<'));
    await postAcs(w.t, w.connection, forged);
    const row = w.t.services.database.sqlite.prepare("SELECT org_id, subject_id, data FROM audit_events WHERE action = 'auth.login.failed' ORDER BY seq DESC LIMIT 1").get() as {
      org_id: string; subject_id: string; data: string;
    };
    expect(row.org_id).toBe(w.owner.orgId);
    expect(row.subject_id).toBe(w.connection.id);
    expect(JSON.parse(row.data)).toEqual({ method: 'saml', reason: 'signature_invalid', connectionId: w.connection.id });
    expect(lastSamlFailureReason(w.t)).toBe('signature_invalid');
    const all = JSON.stringify(w.t.services.database.sqlite.prepare('SELECT * FROM audit_events').all());
    expect(all).not.toMatch(/samlp|Assertion|Signature/);
  });

  it('answers a browser (Accept: text/html) with the SSO error page, without the XML', async () => {
    w = await samlWorld();
    const acs = await w.t.app.inject({
      method: 'POST',
      url: new URL(w.connection.acsUrl).pathname,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html,application/xhtml+xml', origin: 'null' },
      payload: new URLSearchParams({ SAMLResponse: await w.idp.response(fieldsFor(w.connection, null)) }).toString(),
    });
    expect(acs.statusCode).toBe(400);
    expect(acs.headers['content-type']).toMatch(/^text\/html/);
    expect(acs.body).toContain('sso_failed');
    expect(acs.body).not.toMatch(/saml:|samlp:|alice/);
  });
});

