import type { AuditEventInput, RequestContext } from '../audit/events.js';
import { ANONYMOUS_ACTOR } from '../audit/events.js';
import { AppError } from '../platform/errors.js';

/**
 * A refused SSO login: a stable `reason` for the audit log and a sentence
 * safe to show (API.md `sso_failed`: never a stack, token or secret).
 */
export class SsoFailure extends Error {
  constructor(
    readonly reason: string,
    readonly publicDetail: string = 'Single sign-on failed. Start again from your sign-in page.',
    readonly detail: Record<string, unknown> = {},
    /** The wire code; `account_restricted` for restricted accounts (API.md), else `sso_failed`. */
    readonly code: 'sso_failed' | 'account_restricted' = 'sso_failed',
  ) {
    super(reason);
    this.name = 'SsoFailure';
  }

  toAppError(): AppError {
    return new AppError(this.code, { publicDetail: this.publicDetail, detail: { reason: this.reason, ...this.detail } });
  }
}

/** Public sentences for refusals the person can act on; everything else gets the generic one. */
export const SSO_MESSAGES = {
  expired: 'The sign-in attempt expired. Start again.',
  inactive: 'Single sign-on is not available for this organization.',
  emailUnverified: 'Your identity provider did not confirm your email address.',
  domainUnverified: 'Your email domain is not set up for single sign-on with this organization.',
  notAllowed: 'This account cannot sign in with this identity provider.',
} as const;

/** What is known about a failing SSO callback or ACS post, for its audit event. */
export interface FailureScope {
  connectionId: string | null;
  orgId: string | null;
  email: string | null;
}

/** The audit event of a refused SSO login (any protocol). */
export function ssoFailureEvent(method: 'oidc' | 'saml', failure: SsoFailure, scope: FailureScope, context: RequestContext): AuditEventInput {
  return {
    action: 'auth.login.failed',
    actor: ANONYMOUS_ACTOR,
    orgId: scope.orgId,
    subjectId: scope.connectionId,
    data: { method, reason: failure.reason, connectionId: scope.connectionId },
    // The account concerned, when the refusal names one (erasure then removes these details too).
    pii: {
      userId: typeof failure.detail.userId === 'string' ? failure.detail.userId : null,
      ...context,
      ...(scope.email === null ? {} : { email: scope.email.slice(0, 254) }),
    },
  };
}

/**
 * One SSO login attempt (an OIDC callback, a SAML ACS post), for either
 * protocol: `attempt` fills `scope` as it learns who is signing in where.
 * A refusal ({@link SsoFailure}) is audited with what was known by then and
 * thrown as its AppError; any other error passes through as it is.
 * `onLoginOutcome` hears 'success' or 'failure' (metrics).
 */
export async function auditedSsoLogin<T>(
  method: 'oidc' | 'saml',
  deps: {
    identities: { recordFailure(event: AuditEventInput): Promise<void> };
    onLoginOutcome?: (outcome: 'success' | 'failure') => void;
  },
  context: RequestContext,
  attempt: (scope: FailureScope) => Promise<T>,
): Promise<T> {
  const scope: FailureScope = { connectionId: null, orgId: null, email: null };
  try {
    const completed = await attempt(scope);
    deps.onLoginOutcome?.('success');
    return completed;
  } catch (error) {
    if (!(error instanceof SsoFailure)) throw error;
    await deps.identities.recordFailure(ssoFailureEvent(method, error, scope, context));
    deps.onLoginOutcome?.('failure');
    throw error.toAppError();
  }
}
