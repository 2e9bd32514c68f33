import type { RequestContext } from '../../audit/events.js';
import type { Clock } from '../../platform/clock.js';
import { AppError } from '../../platform/errors.js';
import type { ActiveConnection, ConnectionService } from '../connections/connection-service.js';
import { samlAcsUrl, samlSpEntityId, type SsoConnection } from '../connections/connection.js';
import { SSO_MESSAGES, SsoFailure, auditedSsoLogin, type FailureScope } from '../failure.js';
import type { SsoIdentityRepository } from '../identity-repository.js';
import type { SsoAccountLinker } from '../linking.js';
import type { CompletedLogin } from '../oidc/oidc-login-service.js';
import { DEFAULT_RETURN_TO, safeReturnTo } from '../state/return-to.js';
import type { SsoTransaction, SsoTransactionRepository } from '../state/transaction-repository.js';
import {
  assertedEmail, assertedName, checkAssertion, checkDocumentShape, checkEnvelope, checkSignatureAlgorithms, decodeSamlResponse, readEnvelope,
} from './checks.js';
import type { AssertionReplayCache } from './replay-cache.js';
import { DatabaseRequestIdStore, samlRequestKey } from './request-id-store.js';
import { authorizeUrl, SAML_REQUEST_TTL_MS, spMetadataXml, verifyPostResponse, type SpSettings } from './saml-sp.js';


/**
 * SAML 2.0 Web Browser SSO (saml-profiles §4.1) for one organization's
 * connection: SP-initiated over HTTP-Redirect, responses over HTTP-POST,
 * IdP-initiated only where the connection opts in.
 *
 * The ACS runs, in this order (each refusal is audited with its reason and
 * answered `400 sso_failed`, never with the XML or a stack):
 * 1. the connection is an active SAML connection (plan `sso`, enabled);
 * 2. size ≤ 256 KiB and no DOCTYPE, before any parsing; strict parse;
 * 3. RelayState, when present, is a relative path on our origin;
 * 4. InResponseTo names an unspent, unexpired AuthnRequest of THIS
 *    connection — or, absent, the connection allows IdP-initiated login;
 * 5. Status Success, Destination = our ACS, Response Issuer = the IdP;
 * 6. node-saml: signatures by the connection's certificates, audience,
 *    times, InResponseTo (spent through the database store);
 * 7. one assertion, in its place, no duplicate IDs (XSW);
 * 8. our checks on the verified assertion (Issuer, Recipient, times by our
 *    clock, InResponseTo in the SubjectConfirmationData);
 * 9. the request id is spent by this request, and the assertion id was
 *    never seen on this connection (replay cache);
 * 10. the linking rules (src/sso/linking.ts) with NameID as the subject.
 */
export class SamlLoginService {
  constructor(
    private readonly deps: {
      connections: ConnectionService;
      transactions: SsoTransactionRepository;
      identities: SsoIdentityRepository;
      replay: AssertionReplayCache;
      linker: SsoAccountLinker;
      clock: Clock;
      publicUrl: URL;
      onLoginOutcome?: (outcome: 'success' | 'failure') => void;
    },
  ) {}

  private settings(connection: SsoConnection): SpSettings & { idpEntityId: string } {
    if (!connection.saml) throw new Error(`connection ${connection.id} is not a SAML connection`);
    return {
      spEntityId: samlSpEntityId(this.deps.publicUrl, connection.id),
      acsUrl: samlAcsUrl(this.deps.publicUrl, connection.id),
      idpEntityId: connection.saml.idpEntityId,
      idpSsoUrl: connection.saml.idpSsoUrl,
      idpCertificates: connection.saml.idpCertificates,
      allowIdpInitiatedSaml: connection.saml.allowIdpInitiatedSaml,
    };
  }

  /**
   * `GET /v1/sso/start` for a SAML connection: the IdP URL with a deflated
   * AuthnRequest; its ID is stored (single use, 10 minutes) with `returnTo`.
   * No RelayState is sent: where to go afterwards stays on our side.
   */
  async begin(chosen: ActiveConnection, input: { returnTo: string }): Promise<{ redirectUrl: string; expiresAt: Date }> {
    const store = new DatabaseRequestIdStore(this.deps, chosen.connection.id, input.returnTo);
    const redirectUrl = await authorizeUrl(this.settings(chosen.connection), store, '');
    return { redirectUrl, expiresAt: new Date(this.deps.clock.now().getTime() + SAML_REQUEST_TTL_MS) };
  }

  /** `GET /v1/sso/saml/:connectionId/metadata`: our SP metadata for that connection (404 unless it is SAML). */
  async metadata(connectionId: string): Promise<string> {
    const status = await this.deps.connections.status(connectionId);
    if (status.kind === 'missing' || status.connection.type !== 'saml' || !status.connection.saml) throw new AppError('not_found');
    return spMetadataXml(this.settings(status.connection));
  }

  /** `POST /v1/sso/saml/:connectionId/acs`. */
  async acs(input: { connectionId: string; samlResponse: string; relayState: string | undefined; context: RequestContext }): Promise<CompletedLogin> {
    return auditedSsoLogin('saml', this.deps, input.context, (scope) => this.complete(input, scope));
  }

  private async complete(
    input: { connectionId: string; samlResponse: string; relayState: string | undefined; context: RequestContext },
    scope: FailureScope,
  ): Promise<CompletedLogin> {
    const status = await this.deps.connections.status(input.connectionId);
    if (status.kind === 'missing' || status.connection.type !== 'saml' || !status.connection.saml) {
      throw new SsoFailure('connection_missing', SSO_MESSAGES.inactive);
    }
    scope.connectionId = status.connection.id;
    scope.orgId = status.connection.orgId;
    if (status.kind === 'disabled') throw new SsoFailure('connection_disabled', SSO_MESSAGES.inactive);
    if (status.kind === 'plan_lacks_sso') throw new SsoFailure('plan_lacks_sso', SSO_MESSAGES.inactive);
    const connection = status.connection;
    const settings = this.settings(connection);
    const now = this.deps.clock.now();

    // 2. Size and DTD before parsing, then a strict parse of the envelope.
    const xml = decodeSamlResponse(input.samlResponse);
    const { doc, envelope } = readEnvelope(xml);

    // 3. RelayState is echoed by the IdP unsigned: only a relative path is ever used (SECURITY.md "redirects").
    const relayReturnTo = input.relayState === undefined ? DEFAULT_RETURN_TO : safeReturnTo(input.relayState, this.deps.publicUrl);
    if (relayReturnTo === null) throw new SsoFailure('relay_state_invalid');

    // 4. Solicited: our AuthnRequest of this connection, unspent, unexpired. Unsolicited: only if opted in.
    if (envelope.inResponseTo !== null) {
      await this.expectPendingRequest(connection.id, envelope.inResponseTo, now);
    } else if (!settings.allowIdpInitiatedSaml) {
      throw new SsoFailure('unsolicited_response');
    }

    // 5. Envelope checks node-saml skips.
    checkEnvelope(doc, envelope, settings);

    // 6. node-saml (signatures, audience, times, InResponseTo through the database store).
    const store = new DatabaseRequestIdStore(this.deps, connection.id);
    const verified = await verifyPostResponse(settings, store, input.samlResponse);

    // 7–8. Shape (XSW), signature algorithms (no SHA-1), and our own assertion checks, on the verified assertion only.
    checkDocumentShape(doc);
    checkSignatureAlgorithms(doc);
    const assertion = checkAssertion(verified.assertionXml, { idpEntityId: settings.idpEntityId, acsUrl: settings.acsUrl, inResponseTo: envelope.inResponseTo, now });
    scope.email = assertedEmail(assertion);

    // 9. Single use: the request id (spent atomically) and the assertion id (persistent replay cache).
    let transaction: SsoTransaction | null = null;
    if (envelope.inResponseTo !== null) {
      transaction = await store.claim(envelope.inResponseTo);
      if (!transaction) throw new SsoFailure('request_reused', SSO_MESSAGES.expired);
    }
    if ((await this.deps.replay.remember(connection.id, assertion.assertionId, assertion.acceptableUntil, now)) === 'replayed') {
      throw new SsoFailure('assertion_replayed');
    }

    // 10. Who logs in: exactly the OIDC rules, keyed by (connection, NameID).
    // SAML has no email_verified: the email comes from an assertion signed by
    // the organization's own IdP, and the linker still requires its domain to
    // be listed on the connection AND verified by the organization.
    const email = scope.email;
    const { user, session } = await this.deps.linker.signIn({
      connection,
      asserted: { subject: assertion.nameId, email, emailVerified: email !== null, name: assertedName(assertion) },
      method: 'saml',
      context: input.context,
    });
    return { user, session, returnTo: transaction?.returnTo ?? relayReturnTo };
  }

  /** Step 4, read-only (node-saml spends the request): precise reasons for the audit log. */
  private async expectPendingRequest(connectionId: string, requestId: string, now: Date): Promise<void> {
    if (requestId === '' || requestId.length > 256) throw new SsoFailure('request_unknown');
    const found = await this.deps.transactions.find(samlRequestKey(connectionId, requestId));
    if (!found || found.transaction.protocol !== 'saml' || found.transaction.connectionId !== connectionId || found.transaction.requestId !== requestId) {
      throw new SsoFailure('request_unknown');
    }
    if (found.consumed) throw new SsoFailure('request_reused', SSO_MESSAGES.expired);
    if (found.transaction.expiresAt.getTime() <= now.getTime()) throw new SsoFailure('transaction_expired', SSO_MESSAGES.expired);
  }
}
