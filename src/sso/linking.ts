import type { AuditEventInput, RequestContext } from '../audit/events.js';
import type { SessionService } from '../auth/session/session-service.js';
import type { NewSession } from '../auth/session/session.js';
import { emailDomain, type VerifiedDomains } from '../orgs/domains/domain-service.js';
import type { Clock } from '../platform/clock.js';
import { newId } from '../platform/ids.js';
import { normalizeEmail, type User } from '../users/user.js';
import type { UserRepository } from '../users/user-repository.js';
import { SSO_MESSAGES, SsoFailure } from './failure.js';
import type { LoginWrite, SsoIdentityRepository } from './identity-repository.js';

/**
 * (connection, subject) → user: the account-linking rules of SECURITY.md
 * ("account linking") for every SSO protocol. OIDC passes `sub`; SAML
 * passes its NameID as `subject` and its attributes as the rest
 * (src/sso/saml/saml-login-service.ts).
 *
 * 1. An identity (connection, subject) already linked → that user (the
 *    subject, not the email, is the key: OIDC Core §5.7 — `email` is not
 *    stable or unique; nOAuth-style takeover by changing the email at the
 *    IdP is impossible).
 * 2. Otherwise an email is needed, with `email_verified: true`, in a domain
 *    the connection lists AND its organization has verified.
 * 3. A user with that email in the connection's organization, not yet
 *    linked to this connection under another subject → linked.
 *    A user with that email anywhere else (another organization, staff) →
 *    refused: an SSO login never attaches to another tenant's account.
 * 4. No user with that email → just-in-time provisioning of a `member`.
 */
export interface LinkableConnection {
  id: string;
  orgId: string;
  /** Domains the connection serves (lower-case); only those the org verified count. */
  domains: readonly string[];
}

export interface AssertedIdentity {
  /** OIDC `sub` / SAML NameID, exactly as asserted. */
  subject: string;
  email: string | null;
  /** Only an explicit `true` from the IdP. */
  emailVerified: boolean;
  name: string | null;
}

export type LinkDecision =
  | { kind: 'existing'; user: User; identityId: string }
  | { kind: 'link'; user: User; email: string }
  | { kind: 'provision'; email: string; name: string };

export class SsoAccountLinker {
  constructor(
    private readonly deps: {
      identities: SsoIdentityRepository;
      users: UserRepository;
      domains: VerifiedDomains;
      sessions: SessionService;
      clock: Clock;
    },
  ) {}

  /** Apply the rules above; throws {@link SsoFailure} when refused. */
  async decide(connection: LinkableConnection, asserted: AssertedIdentity): Promise<LinkDecision> {
    const known = await this.deps.identities.find(connection.id, asserted.subject);
    if (known) {
      // Belt and braces: identities never cross organizations.
      if (known.user.orgId !== connection.orgId) throw new SsoFailure('identity_in_other_org', SSO_MESSAGES.notAllowed);
      return { kind: 'existing', user: known.user, identityId: known.identity.id };
    }

    if (asserted.email === null) throw new SsoFailure('email_missing', SSO_MESSAGES.emailUnverified);
    const email = normalizeEmail(asserted.email);
    const domain = emailDomain(email);
    if (!asserted.emailVerified) throw new SsoFailure('email_unverified', SSO_MESSAGES.emailUnverified);
    if (domain === null || !connection.domains.includes(domain)) {
      throw new SsoFailure('domain_not_in_connection', SSO_MESSAGES.domainUnverified, { domain });
    }
    if (!(await this.deps.domains.isVerifiedFor(connection.orgId, domain))) {
      throw new SsoFailure('domain_unverified', SSO_MESSAGES.domainUnverified, { domain });
    }

    const existing = await this.deps.users.byEmail(email);
    if (existing) {
      if (existing.orgId !== connection.orgId) throw new SsoFailure('email_in_other_org', SSO_MESSAGES.notAllowed, { userId: existing.id });
      // One account, one subject per connection: a second subject claiming the
      // same email (reassigned address at the IdP) does not take the account over.
      if (await this.deps.identities.hasIdentityOn(connection.id, existing.id)) {
        throw new SsoFailure('user_linked_to_other_subject', SSO_MESSAGES.notAllowed, { userId: existing.id });
      }
      return { kind: 'link', user: existing, email };
    }
    return { kind: 'provision', email, name: displayName(asserted.name, email) };
  }

  /**
   * Decide, then write the link / provisioned member and a new session in
   * one transaction with its audit events. A concurrent first login of the
   * same person is retried once (the winner's identity is then found).
   */
  async signIn(input: {
    connection: LinkableConnection;
    asserted: AssertedIdentity;
    method: 'oidc' | 'saml';
    context: RequestContext;
  }): Promise<{ user: User; session: NewSession; decision: LinkDecision['kind'] }> {
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const decision = await this.decide(input.connection, input.asserted);
      if (decision.kind !== 'provision' && decision.user.status !== 'active') {
        throw new SsoFailure('account_restricted', 'This account is restricted.', { userId: decision.user.id }, 'account_restricted');
      }
      const now = this.deps.clock.now();
      const userId = decision.kind === 'provision' ? newId() : decision.user.id;
      const session = this.deps.sessions.mint({ userId, aal: 1, authMethod: input.method, context: input.context });
      const { write, events } = this.plan(decision, userId, session, input, now);
      const outcome = await this.deps.identities.completeLogin({ write, session, at: now, events });
      if (outcome === 'ok') {
        const user = await this.deps.users.byId(userId);
        if (!user) throw new Error('signed-in user vanished');
        return { user, session, decision: decision.kind };
      }
    }
    throw new SsoFailure('concurrent_login_conflict');
  }

  private plan(
    decision: LinkDecision,
    userId: string,
    session: NewSession,
    input: { connection: LinkableConnection; asserted: AssertedIdentity; method: 'oidc' | 'saml'; context: RequestContext },
    now: Date,
  ): { write: LoginWrite; events: AuditEventInput[] } {
    const { connection } = input;
    const pii = { userId, ...input.context };
    const identityId = decision.kind === 'existing' ? decision.identityId : newId();
    const loginEvent: AuditEventInput = {
      action: 'auth.login.succeeded',
      actor: { type: 'user', id: userId },
      orgId: connection.orgId,
      subjectId: userId,
      data: { sessionId: session.session.id, aal: 1, method: input.method, connectionId: connection.id },
      pii,
    };
    if (decision.kind === 'existing') return { write: { kind: 'existing', identityId }, events: [loginEvent] };

    const identity = { id: identityId, connectionId: connection.id, subject: input.asserted.subject, userId, email: decision.email, createdAt: now };
    const linked: AuditEventInput = {
      action: 'sso.identity.linked',
      actor: { type: 'user', id: userId },
      orgId: connection.orgId,
      subjectId: userId,
      data: { connectionId: connection.id, identityId, provisioned: decision.kind === 'provision' },
      pii: { ...pii, email: decision.email },
    };
    if (decision.kind === 'link') return { write: { kind: 'link', identity }, events: [linked, loginEvent] };

    const provisioned: AuditEventInput = {
      action: 'sso.user.provisioned',
      actor: { type: 'system', id: null },
      orgId: connection.orgId,
      subjectId: userId,
      data: { connectionId: connection.id, role: 'member', method: input.method },
      pii: { ...pii, email: decision.email },
    };
    return {
      write: {
        kind: 'provision',
        user: { id: userId, email: decision.email, name: decision.name, passwordHash: null, orgId: connection.orgId, role: 'member', ageConfirmedAt: null, createdAt: now },
        identity,
      },
      events: [provisioned, linked, loginEvent],
    };
  }
}

function displayName(asserted: string | null, email: string): string {
  const name = asserted?.normalize('NFC').trim().slice(0, 200);
  if (name && /\S/.test(name)) return name;
  return email.split('@')[0] ?? email;
}
