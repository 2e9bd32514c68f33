import type { RequestContext } from '../../audit/events.js';
import type { NewSession } from '../../auth/session/session.js';
import { emailDomain, type VerifiedDomains } from '../../orgs/domains/domain-service.js';
import { MINUTE, type Clock } from '../../platform/clock.js';
import { constantTimeEqual, hashToken, randomToken } from '../../platform/crypto/tokens.js';
import { AppError, validationFailed } from '../../platform/errors.js';
import { newId } from '../../platform/ids.js';
import { normalizeEmail, type User } from '../../users/user.js';
import type { ActiveConnection, ConnectionService } from '../connections/connection-service.js';
import { oidcRedirectUri, type SsoConnection } from '../connections/connection.js';
import { SSO_MESSAGES, SsoFailure, auditedSsoLogin, type FailureScope } from '../failure.js';
import type { SsoIdentityRepository } from '../identity-repository.js';
import type { SsoAccountLinker } from '../linking.js';
import { safeReturnTo } from '../state/return-to.js';
import type { SsoTransactionRepository } from '../state/transaction-repository.js';
import { OidcRejected, type OidcRelyingParty } from './oidc-client.js';

/** SECURITY.md / issue 4: login state lives 10 minutes. */
export const SSO_TRANSACTION_TTL_MS = 10 * MINUTE;

export interface StartedLogin {
  redirectUrl: string;
  /** Browser-binding value for the `cleverom_sso` cookie (RFC 9700 §4.7.1). */
  bindingToken: string;
  expiresAt: Date;
}

export interface CompletedLogin {
  user: User;
  session: NewSession;
  returnTo: string;
}

/**
 * Starts a login over another protocol once the connection is chosen
 * (SAML: src/sso/saml/saml-login-service.ts). `GET /v1/sso/start` and the
 * sign-in page go through {@link OidcLoginService.start} for every protocol.
 */
export interface ProtocolStarter {
  begin(chosen: ActiveConnection, input: { returnTo: string }): Promise<{ redirectUrl: string; expiresAt: Date }>;
}


const NO_CONNECTION = 'No active single sign-on connection for this sign-in.';

/**
 * SP-initiated SSO login over OIDC (authorization code + PKCE S256 + state
 * + nonce; RFC 9700 §2.1): `start` picks the connection (home-realm
 * discovery by verified domain, or by id) and stores the one-time
 * transaction; `callback` consumes it atomically, lets the relying party
 * check the IdP's answer, then the linking rules decide who logs in.
 * Every refusal is audited with its reason.
 */
export class OidcLoginService {
  constructor(
    private readonly deps: {
      connections: ConnectionService;
      domains: VerifiedDomains;
      transactions: SsoTransactionRepository;
      identities: SsoIdentityRepository;
      rp: OidcRelyingParty;
      linker: SsoAccountLinker;
      clock: Clock;
      publicUrl: URL;
      onLoginOutcome?: (outcome: 'success' | 'failure') => void;
      /** SAML connections are started here (their connection is chosen by the same rules). */
      saml?: ProtocolStarter;
    },
  ) {}

  /** `GET /v1/sso/start` (a SAML connection is handed to `deps.saml`). */
  async start(input: {
    email?: string | undefined;
    connectionId?: string | undefined;
    returnTo?: string | undefined;
    bindingToken?: string | undefined;
  }): Promise<StartedLogin> {
    const returnTo = safeReturnTo(input.returnTo, this.deps.publicUrl);
    if (returnTo === null) throw validationFailed([{ field: 'returnTo', message: 'must be a relative path on this site, starting with a single /' }]);
    if ((input.email === undefined) === (input.connectionId === undefined)) {
      throw validationFailed([{ field: 'email', message: 'give either email or connectionId' }]);
    }
    const chosen = input.connectionId !== undefined ? await this.byId(input.connectionId) : await this.byEmail(input.email ?? '');
    // One binding value per browser, so two sign-ins in two tabs do not undo each other.
    const bindingToken = input.bindingToken !== undefined && /^[A-Za-z0-9_-]{43}$/.test(input.bindingToken) ? input.bindingToken : randomToken(32);
    if (chosen.connection.type === 'saml') {
      if (!this.deps.saml) throw new AppError('not_found', { publicDetail: NO_CONNECTION });
      const started = await this.deps.saml.begin(chosen, { returnTo });
      return { ...started, bindingToken };
    }
    const now = this.deps.clock.now();
    const request = await this.deps.rp.authorizationRequest(this.deps.connections.oidcSettings(chosen.connection), now, input.email ?? null);
    const expiresAt = new Date(now.getTime() + SSO_TRANSACTION_TTL_MS);
    await this.deps.transactions.create(
      {
        id: newId(),
        protocol: 'oidc',
        connectionId: chosen.connection.id,
        stateHash: hashToken(request.state),
        bindingHash: hashToken(bindingToken),
        nonce: request.nonce,
        codeVerifier: request.codeVerifier,
        requestId: null,
        returnTo,
        createdAt: now,
        expiresAt,
      },
      now,
    );
    return { redirectUrl: request.url.href, bindingToken, expiresAt };
  }

  private async byId(connectionId: string): Promise<ActiveConnection> {
    const status = await this.deps.connections.status(connectionId);
    if (status.kind !== 'active' || !this.startable(status.connection.type)) throw new AppError('not_found', { publicDetail: NO_CONNECTION });
    return status;
  }

  private startable(type: SsoConnection['type']): boolean {
    return type === 'oidc' || (type === 'saml' && this.deps.saml !== undefined);
  }

  /** Home-realm discovery: the organization that verified the email's domain, and its connection for it. */
  private async byEmail(emailInput: string): Promise<ActiveConnection> {
    const domain = emailDomain(normalizeEmail(emailInput));
    if (domain === null) throw validationFailed([{ field: 'email', message: 'must be an email address' }]);
    const orgId = await this.deps.domains.verifiedOwner(domain);
    const candidates = orgId === null ? [] : await this.deps.connections.activeForDomain(orgId, domain);
    const chosen = candidates.find((c) => this.startable(c.connection.type));
    if (!chosen) throw new AppError('not_found', { publicDetail: NO_CONNECTION });
    return chosen;
  }

  /** `GET /v1/sso/oidc/callback`: `rawQuery` is the callback's query string, as received. */
  async callback(input: { rawQuery: string; bindingToken: string | undefined; context: RequestContext }): Promise<CompletedLogin> {
    return auditedSsoLogin('oidc', this.deps, input.context, (scope) => this.complete(input, scope));
  }

  private async complete(input: { rawQuery: string; bindingToken: string | undefined; context: RequestContext }, scope: FailureScope): Promise<CompletedLogin> {
    const params = new URLSearchParams(input.rawQuery);
    const states = params.getAll('state');
    if (states.length !== 1 || !states[0]) throw new SsoFailure('state_missing');
    const now = this.deps.clock.now();

    // Single use (DESIGN.md rule 7): consumed before anything else happens.
    const consumed = await this.deps.transactions.consume(hashToken(states[0]), now);
    if (consumed.kind === 'unknown') throw new SsoFailure('state_unknown');
    const tx = consumed.transaction;
    scope.connectionId = tx.connectionId;
    if (consumed.kind === 'reused') throw new SsoFailure('state_reused');
    if (tx.protocol !== 'oidc' || tx.nonce === null || tx.codeVerifier === null) throw new SsoFailure('state_unknown');
    if (tx.expiresAt.getTime() <= now.getTime()) throw new SsoFailure('transaction_expired', SSO_MESSAGES.expired);
    // RFC 9700 §4.7.1: the response must come back to the browser that started
    // the login (login CSRF / session injection with someone else's callback URL).
    if (input.bindingToken === undefined || !constantTimeEqual(hashToken(input.bindingToken), tx.bindingHash)) {
      throw new SsoFailure('browser_mismatch', SSO_MESSAGES.expired);
    }

    const status = await this.deps.connections.status(tx.connectionId);
    if (status.kind === 'missing') throw new SsoFailure('connection_missing', SSO_MESSAGES.inactive);
    scope.orgId = status.connection.orgId;
    if (status.kind === 'disabled') throw new SsoFailure('connection_disabled', SSO_MESSAGES.inactive);
    if (status.kind === 'plan_lacks_sso') throw new SsoFailure('plan_lacks_sso', SSO_MESSAGES.inactive);

    const callbackUrl = new URL(oidcRedirectUri(this.deps.publicUrl));
    callbackUrl.search = params.toString();
    let asserted;
    try {
      asserted = await this.deps.rp.completeAuthorization(this.deps.connections.oidcSettings(status.connection), {
        callbackUrl,
        state: states[0],
        nonce: tx.nonce,
        codeVerifier: tx.codeVerifier,
        now,
        loginStartedAt: tx.createdAt,
      });
    } catch (error) {
      if (error instanceof OidcRejected) throw new SsoFailure(error.reason, error.publicDetail, error.detail);
      throw error;
    }
    scope.email = asserted.email;

    const { user, session } = await this.deps.linker.signIn({ connection: status.connection, asserted, method: 'oidc', context: input.context });
    return { user, session, returnTo: tx.returnTo };
  }
}
