import type { SAML, SamlConfig } from '@node-saml/node-saml';
import { MINUTE } from '../../platform/clock.js';
import { SsoFailure } from '../failure.js';
import { certificatePem } from './certificates.js';

/**
 * The SAML 2.0 service provider over @node-saml/node-saml (≥ 5.1.0,
 * CVE-2025-54369 / CVE-2025-54419): the only file that imports it, and the
 * one place its errors are translated (DESIGN.md rule 3).
 *
 * Settings enforced here (SECURITY.md "SAML SP"; docs/threat-model.md):
 * - one `SAML` instance per request, built from the connection's row: no
 *   state shared between tenants;
 * - `wantAssertionsSigned: true` — the assertion itself must carry a valid
 *   signature by one of the connection's certificates (never the KeyInfo
 *   certificate of the message: CVE-2024-32962 class); a signature on the
 *   Response only is not enough. `wantAuthnResponseSigned: false`, because
 *   Entra ID / AD FS sign only the assertion by default;
 * - `audience` = our per-connection entity id (SAML core §2.5.1.4);
 * - `acceptedClockSkewMs: 60_000` (never 0, never -1 which turns time checks
 *   off) and a maximum assertion age of 10 minutes;
 * - `validateInResponseTo: always` unless the connection explicitly allows
 *   IdP-initiated login (then `ifPresent`), over a request-id store backed
 *   by the database ({@link RequestIdStore}) — node-saml's in-memory default
 *   belongs to one instance, so with per-request instances every login would
 *   fail, and across processes a replay would pass;
 * - `disableRequestedAuthnContext: true` — the default
 *   PasswordProtectedTransport/exact request breaks MFA and passwordless
 *   sign-in at several IdPs.
 *
 * Time: node-saml reads the system clock (`new Date()`) for the Conditions,
 * SubjectConfirmationData and request-id age checks; it cannot be given our
 * `Clock`. The service therefore repeats every time check with the injected
 * clock ({@link ../saml/checks.ts}); tests run the app's clock at real time
 * and make the IdP sign already-expired assertions instead of moving time.
 *
 * node-saml does NOT check on login: the assertion Issuer, Recipient,
 * Destination, SubjectConfirmationData time of unsolicited responses, or
 * replays of unsolicited responses — `checks.ts` and the replay cache do.
 */

export const SAML_CLOCK_SKEW_MS = 60_000;
/** An AuthnRequest id is accepted in InResponseTo for 10 minutes (SECURITY.md "SAML state"). */
export const SAML_REQUEST_TTL_MS = 10 * MINUTE;
/** An assertion is not accepted more than 10 minutes after its IssueInstant, whatever its NotOnOrAfter says. */
export const SAML_MAX_ASSERTION_AGE_MS = 10 * MINUTE;
export const NAMEID_FORMAT_UNSPECIFIED = 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified';

/** Per-connection values node-saml needs. */
export interface SpSettings {
  spEntityId: string;
  acsUrl: string;
  idpSsoUrl: string;
  /** Base64 DER signing certificates of the IdP (all trusted: rollover). */
  idpCertificates: string[];
  allowIdpInitiatedSaml: boolean;
}

/**
 * node-saml's `CacheProvider`, restated so that the store does not import
 * the library: `saveAsync` when an AuthnRequest is issued, `getAsync` when
 * a response names it in InResponseTo, `removeAsync` to spend it.
 */
export interface RequestIdStore {
  saveAsync(key: string, value: string): Promise<{ value: string; createdAt: number } | null>;
  getAsync(key: string): Promise<string | null>;
  removeAsync(key: string | null): Promise<string | null>;
}

/** What node-saml verified: the signed assertion, re-serialized from the bytes the signature covers. */
export interface VerifiedResponse {
  assertionXml: string;
}

type NodeSaml = typeof import('@node-saml/node-saml');
let nodeSaml: Promise<NodeSaml> | null = null;

/**
 * @node-saml/node-saml, loaded on first use. Performance (issue 9): with its
 * XML and signature stack it takes ~55 ms to import, a twentieth of the
 * service's start-up, and only SAML logins and metadata need it.
 */
function library(): Promise<NodeSaml> {
  return (nodeSaml ??= import('@node-saml/node-saml'));
}

function samlFor(lib: NodeSaml, settings: SpSettings, store: RequestIdStore): SAML {
  const { SAML, ValidateInResponseTo } = lib;
  const config: SamlConfig = {
    issuer: settings.spEntityId,
    audience: settings.spEntityId,
    callbackUrl: settings.acsUrl,
    entryPoint: settings.idpSsoUrl,
    idpCert: settings.idpCertificates.map(certificatePem),
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: false,
    acceptedClockSkewMs: SAML_CLOCK_SKEW_MS,
    maxAssertionAgeMs: SAML_MAX_ASSERTION_AGE_MS,
    validateInResponseTo: settings.allowIdpInitiatedSaml ? ValidateInResponseTo.ifPresent : ValidateInResponseTo.always,
    cacheProvider: store,
    requestIdExpirationPeriodMs: SAML_REQUEST_TTL_MS,
    disableRequestedAuthnContext: true,
    identifierFormat: NAMEID_FORMAT_UNSPECIFIED,
    signatureAlgorithm: 'sha256',
  };
  return new SAML(config);
}

/**
 * The IdP URL carrying a deflated AuthnRequest (saml-bindings §3.4.4.1,
 * HTTP-Redirect). node-saml stores its ID through `store.saveAsync`.
 */
export async function authorizeUrl(settings: SpSettings, store: RequestIdStore, relayState: string): Promise<string> {
  const lib = await library();
  try {
    return await samlFor(lib, settings, store).getAuthorizeUrlAsync(relayState, undefined, {});
  } catch (error) {
    throw translate(lib, error);
  }
}

/**
 * Verify an HTTP-POST `SAMLResponse` (base64): signatures, audience,
 * InResponseTo against `store`, Conditions and SubjectConfirmationData
 * times. Throws {@link SsoFailure} with a stable reason on refusal.
 */
export async function verifyPostResponse(settings: SpSettings, store: RequestIdStore, samlResponse: string): Promise<VerifiedResponse> {
  const lib = await library();
  let assertionXml: string | undefined;
  try {
    const { profile } = await samlFor(lib, settings, store).validatePostResponseAsync({ SAMLResponse: samlResponse });
    assertionXml = profile?.getAssertionXml?.();
  } catch (error) {
    throw translate(lib, error);
  }
  if (typeof assertionXml !== 'string' || assertionXml === '') throw new SsoFailure('assertion_missing');
  return { assertionXml };
}

/** SP metadata (SAML metadata §2.4.4 SPSSODescriptor): entity id, HTTP-POST ACS, NameID format, WantAssertionsSigned. */
export async function spMetadataXml(settings: Pick<SpSettings, 'spEntityId' | 'acsUrl'>): Promise<string> {
  return (await library()).generateServiceProviderMetadata({
    issuer: settings.spEntityId,
    callbackUrl: settings.acsUrl,
    identifierFormat: NAMEID_FORMAT_UNSPECIFIED,
    wantAssertionsSigned: true,
  });
}

/** node-saml's message → a stable audit reason. The first match wins. */
const REASONS: [RegExp, string][] = [
  [/InResponseTo is missing/i, 'unsolicited_response'],
  [/InResponseTo does not match/i, 'in_response_to_mismatch'],
  [/InResponseTo/i, 'request_unknown'],
  [/not yet valid/i, 'assertion_not_yet_valid'],
  [/expired/i, 'assertion_expired'],
  [/subject confirmation/i, 'subject_confirmation_invalid'],
  [/audience/i, 'audience_mismatch'],
  [/multiple assertions|more than one element|Referenced node|Too many signatures|too many transforms|signed references/i, 'signature_wrapping'],
  [/signature/i, 'signature_invalid'],
  [/Missing SAML assertion|Cannot obtain assertion/i, 'assertion_missing'],
  [/EncryptedAssertion|decryption/i, 'encrypted_assertion_unsupported'],
  [/XML|xpath|Non-whitespace|unclosed|attribute|entity/i, 'response_malformed'],
];

/**
 * Library errors → {@link SsoFailure}. The library's message is kept in the
 * logged detail only, shortened and with markup stripped: never the XML.
 */
function translate(lib: NodeSaml, error: unknown): SsoFailure {
  if (error instanceof SsoFailure) return error;
  if (error instanceof lib.SamlStatusError) return new SsoFailure('idp_status_error', 'Your identity provider refused the sign-in.');
  const message = error instanceof Error ? error.message : String(error);
  const reason = REASONS.find(([pattern]) => pattern.test(message))?.[1] ?? 'response_invalid';
  return new SsoFailure(reason, undefined, { libraryMessage: safeMessage(message) });
}

function safeMessage(message: string): string {
  return message.replace(/<[^>]*>?/g, '').replace(/[^\x20-\x7e]/g, ' ').slice(0, 160);
}
