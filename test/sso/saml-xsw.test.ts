import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDocumentShape, readEnvelope } from '../../src/sso/saml/checks.js';
import { SsoFailure } from '../../src/sso/failure.js';
import { expectRefused, fieldsFor, postAcs, samlLogins, samlWorld, startSaml, type SamlWorld } from '../helpers/saml.js';
import { decode, type SigningShape } from '../helpers/saml-idp.js';
import { applyXsw, XSW_DESCRIPTIONS, type XswVariant } from '../helpers/saml-xsw.js';

/**
 * XML Signature Wrapping (XSW1–XSW8, Somorovsky et al., "On Breaking SAML",
 * USENIX Security 2012; shapes as in SAML Raider). Mallory, a genuine user
 * of the organization's IdP, receives a response signed for herself and
 * rearranges it so that an unsigned copy claims to be the owner — whose
 * SAML identity already exists — while the signed original still verifies
 * somewhere else in the document.
 *
 * Two layers stop them: node-saml reads only the bytes the signature covers
 * and refuses references that are not the signed element's parent or not
 * unique; then our document-shape check (exactly one assertion, in its
 * place, no duplicate IDs) refuses a rearranged message even if a
 * signature somewhere verifies. The end-to-end cases prove the ACS refuses
 * each variant; the unit cases prove the shape check alone would.
 */

const VICTIM = { nameId: 'owner-nameid', email: 'owner@acme.test' };
const CASES: [XswVariant, SigningShape][] = [
  ['XSW1', 'response-and-assertion'],
  ['XSW2', 'response-and-assertion'],
  ...(['XSW3', 'XSW4', 'XSW5', 'XSW6', 'XSW7', 'XSW8'] as const).flatMap((v): [XswVariant, SigningShape][] => [
    [v, 'assertion'],
    [v, 'response-and-assertion'],
  ]),
];

let w: SamlWorld;
beforeAll(async () => {
  w = await samlWorld();
  // The owner has signed in through SAML before: the identity an attacker would like to become.
  const first = await postAcs(w.t, w.connection, await w.idp.response(fieldsFor(w.connection, await startSaml(w.t, w.idp, w.connection), { ...VICTIM })));
  expect(first.statusCode, first.body).toBe(302);
});
afterAll(async () => {
  await w.t.close();
});

async function mallorysResponse(signing: SigningShape): Promise<string> {
  const requestId = await startSaml(w.t, w.idp, w.connection);
  return w.idp.response({ ...fieldsFor(w.connection, requestId, { nameId: 'mallory-nameid', email: 'mallory@acme.test' }), signing });
}

describe('XSW through the ACS', () => {
  it.each(CASES)('%s (%s signed) is refused: no session for the owner, nor for Mallory', async (variant, signing) => {
    const before = samlLogins(w.t);
    const wrapped = applyXsw(variant, await mallorysResponse(signing), VICTIM);
    expect(decode(wrapped)).toContain(VICTIM.email);
    const response = await postAcs(w.t, w.connection, wrapped);
    expectRefused(w.t, response, /^(signature_invalid|signature_wrapping|assertion_misplaced|duplicate_id)$/);
    expect(samlLogins(w.t)).toBe(before);
  });

  it('the same responses, unwrapped, do log Mallory in (the refusals above are about the wrapping)', async () => {
    for (const signing of ['assertion', 'response-and-assertion'] as const) {
      expect((await postAcs(w.t, w.connection, await mallorysResponse(signing))).statusCode).toBe(302);
    }
  });
});

describe('document-shape check alone (defence behind node-saml)', () => {
  it.each(CASES)('%s (%s signed): checkDocumentShape refuses the wrapped document', async (variant, signing) => {
    const { doc } = readEnvelope(decode(applyXsw(variant, await mallorysResponse(signing), VICTIM)));
    let reason: string | null = null;
    try {
      checkDocumentShape(doc);
    } catch (error) {
      reason = error instanceof SsoFailure ? error.reason : String(error);
    }
    expect(reason, XSW_DESCRIPTIONS[variant]).toMatch(/^(assertion_misplaced|duplicate_id)$/);
  });

  it('accepts the genuine shapes', async () => {
    for (const signing of ['assertion', 'response-and-assertion'] as const) {
      const { doc } = readEnvelope(decode(await mallorysResponse(signing)));
      expect(() => checkDocumentShape(doc)).not.toThrow();
    }
  });
});
