import type { AuditEventInput, RequestContext } from '../../audit/events.js';
import { ANONYMOUS_ACTOR } from '../../audit/events.js';
import { MINUTE, HOUR, type Clock } from '../../platform/clock.js';
import { hashToken, randomToken, sha256Hex } from '../../platform/crypto/tokens.js';
import { AppError, validationFailed } from '../../platform/errors.js';
import { newId } from '../../platform/ids.js';
import type { Mailer } from '../../platform/mailer.js';
import type { User } from '../../users/user.js';
import { normalizeEmail } from '../../users/user.js';
import type { UserRepository } from '../../users/user-repository.js';
import type { SessionService } from '../session/session-service.js';
import type { NewSession, Session } from '../session/session.js';
import type { PasswordHasher, VerifyOutcome } from './hasher.js';
import type { PasswordRepository } from './password-repository.js';
import { checkPassword, normalizePassword } from './policy.js';
import { secondsLocked } from './throttle.js';

/** The outcome of the password step of a login (DESIGN.md rule 9). */
export type LoginResult =
  | { kind: 'session'; user: User; session: NewSession }
  | { kind: 'mfa_required'; challengeId: string; pendingToken: string; expiresAt: Date }
  | { kind: 'sso_required'; ssoUrl: string };

/**
 * What later features decide after a correct password (MFA, enforced SSO,
 * restriction). Returns null to let the login issue a session.
 */
export interface LoginStep {
  afterPassword(input: { user: User; context: RequestContext }): Promise<LoginResult | null>;
}

/** Verifies a user's second-factor code (the TOTP feature implements it); throws `invalid_code`. */
export interface CodeVerifier {
  verifyCode(user: User, code: string, context: RequestContext): Promise<void>;
}

const RESET_TOKEN_TTL_MS = 30 * MINUTE;
/** At most this many reset emails per account per hour (quietly: the answer is always 202). */
const RESET_EMAILS_PER_HOUR = 3;

export function throttleKey(email: string): string {
  return sha256Hex(`login:${normalizeEmail(email)}`);
}

export class PasswordService {
  private readonly steps: LoginStep[] = [];
  private codeVerifier: CodeVerifier | null = null;

  constructor(
    private readonly deps: {
      users: UserRepository;
      repo: PasswordRepository;
      hasher: PasswordHasher;
      sessions: SessionService;
      mailer: Mailer;
      clock: Clock;
      publicUrl: URL;
      /** For members of an organization: the password minimum (15, or lower for MFA orgs) and the org's name (a context word). */
      passwordRules: (orgId: string | null) => Promise<{ minLength: number; orgName: string | null }>;
      /** Failures of work done after the answer (e.g. sending a reset email). */
      onBackgroundError?: (error: unknown, what: string) => void;
      onLoginOutcome?: (outcome: 'success' | 'failure' | 'locked' | 'mfa_required' | 'sso_required') => void;
    },
  ) {}

  /** Later features plug their post-password decision in here. */
  addLoginStep(step: LoginStep): void {
    this.steps.push(step);
  }

  /**
   * The password step of a login. Unknown email and wrong password take the
   * same path: one argon2 verification, one throttle write, one audit event,
   * and the same `401 invalid_credentials` (ASVS 6.3.8).
   */
  async login(emailInput: string, passwordInput: string, context: RequestContext): Promise<LoginResult> {
    const email = normalizeEmail(emailInput);
    const password = normalizePassword(passwordInput);
    const key = throttleKey(email);
    const user = await this.deps.users.byEmail(email);

    const attempt = await this.attempt(key, () => this.deps.hasher.verify(user?.passwordHash ?? null, password));
    if (attempt.kind === 'locked') {
      await this.deps.repo.recordEvent(this.loginEvent('auth.login.locked', user, context, { retryAfter: attempt.retryAfter }));
      this.deps.onLoginOutcome?.('locked');
      throw lockedError(attempt.retryAfter);
    }
    const { verdict } = attempt;
    if (!user || !verdict.ok) {
      // Already counted by the reservation; only the event is left to write.
      await this.deps.repo.recordEvent(
        this.loginEvent('auth.login.failed', user, context, { reason: 'invalid_credentials', consecutiveFailures: attempt.failures }),
      );
      this.deps.onLoginOutcome?.('failure');
      throw new AppError('invalid_credentials');
    }
    // GDPR Art. 18: a restricted account cannot log in. Said only after the
    // password is right, so a stranger learns nothing about the account. The
    // password was right, so the counter is cleared as on any success.
    if (user.status !== 'active') {
      await this.deps.repo.recordLoginSuccess({
        throttleKey: key,
        userId: user.id,
        rehash: null,
        session: null,
        event: this.loginEvent('auth.login.refused', user, context, { reason: 'account_restricted' }),
      });
      this.deps.onLoginOutcome?.('failure');
      throw new AppError('account_restricted');
    }

    for (const step of this.steps) {
      const result = await step.afterPassword({ user, context });
      if (result) {
        await this.deps.repo.recordLoginSuccess({
          throttleKey: key,
          userId: user.id,
          rehash: null,
          session: null,
          event: this.loginEvent('auth.login.password_verified', user, context, { next: result.kind }),
        });
        this.deps.onLoginOutcome?.(result.kind === 'session' ? 'success' : result.kind);
        return result;
      }
    }

    const rehash = verdict.needsRehash ? await this.deps.hasher.hash(password) : null;
    const session = this.deps.sessions.mint({ userId: user.id, aal: 1, authMethod: 'password', context, staff: user.orgId === null });
    await this.deps.repo.recordLoginSuccess({
      throttleKey: key,
      userId: user.id,
      rehash,
      session,
      event: this.loginEvent('auth.login.succeeded', user, context, { sessionId: session.session.id, aal: 1, method: 'password' }),
    });
    this.deps.onLoginOutcome?.('success');
    return { kind: 'session', user, session };
  }

  /**
   * One password check under the account throttle (SECURITY.md "throttling";
   * NIST SP 800-63B-4 §3.2.2). The attempt is reserved — counted as a failure
   * in the same write that reads the counter — before the hash runs, so
   * parallel requests cannot all be checked before the lock applies (issue
   * 23 item 1). A refusal while locked runs no argon2. If the hash never ran
   * (the argon2 queue answered `429`), the reservation is given back.
   */
  private async attempt(
    key: string,
    verify: () => Promise<VerifyOutcome>,
  ): Promise<{ kind: 'locked'; retryAfter: number } | { kind: 'checked'; verdict: VerifyOutcome; failures: number }> {
    const now = this.deps.clock.now();
    const reservation = await this.deps.repo.reserveAttempt(key, now);
    if (reservation.kind === 'locked') return { kind: 'locked', retryAfter: Math.max(1, secondsLocked(reservation.lockedUntil, now)) };
    let verdict: VerifyOutcome;
    try {
      verdict = await verify();
    } catch (error) {
      await this.deps.repo.releaseAttempt(key, this.deps.clock.now());
      throw error;
    }
    return { kind: 'checked', verdict, failures: reservation.failures };
  }

  /**
   * `POST /v1/me/reauthenticate` (and a password change) with a password.
   * Wrong passwords count against the same account throttle as logins; a
   * right one clears it, as a login does.
   */
  async verifyPasswordOf(user: User, passwordInput: string, context: RequestContext): Promise<void> {
    const key = throttleKey(user.email);
    const password = normalizePassword(passwordInput);
    const attempt = await this.attempt(key, () => this.deps.hasher.verify(user.passwordHash, password));
    if (attempt.kind === 'locked') throw lockedError(attempt.retryAfter);
    if (!attempt.verdict.ok) {
      await this.deps.repo.recordEvent(
        this.loginEvent('auth.reauthentication.failed', user, context, { reason: 'invalid_credentials', consecutiveFailures: attempt.failures }),
      );
      throw new AppError('invalid_credentials');
    }
    await this.deps.repo.clearThrottle(key);
  }

  /**
   * `POST /v1/me/reauthenticate`: a password and/or a second-factor code; each
   * given must be right. Codes are checked by the verifier the TOTP feature
   * plugs in; without one, a code cannot be used. On success the session is
   * rotated (ASVS 7.2.4): the caller gets a new token and the old one stops
   * working. With a code, the session records a second factor now (staff
   * decisions need one within 10 minutes); a password alone does not.
   */
  async reauthenticate(input: { user: User; session: Session; password?: string | undefined; code?: string | undefined; context: RequestContext }): Promise<NewSession> {
    if (input.password === undefined && input.code === undefined) {
      throw validationFailed([{ field: 'password', message: 'give a password or a code' }]);
    }
    if (input.password !== undefined) await this.verifyPasswordOf(input.user, input.password, input.context);
    if (input.code !== undefined) {
      if (!this.codeVerifier) throw new AppError('invalid_code');
      await this.codeVerifier.verifyCode(input.user, input.code, input.context);
    }
    const next = await this.deps.sessions.reauthenticated(input.user, input.session, input.code !== undefined ? 'totp' : 'password', input.context);
    // The session was revoked or expired while the check ran.
    if (!next) throw new AppError('unauthenticated');
    return next;
  }

  setCodeVerifier(verifier: CodeVerifier): void {
    this.codeVerifier = verifier;
  }

  async changePassword(input: {
    user: User;
    session: Session;
    currentPassword: string;
    newPassword: string;
    context: RequestContext;
  }): Promise<void> {
    const next = normalizePassword(input.newPassword);
    const rules = await this.deps.passwordRules(input.user.orgId);
    const problem = checkPassword({
      password: next,
      field: 'newPassword',
      minLength: rules.minLength,
      context: [input.user.email, input.user.name, ...(rules.orgName === null ? [] : [rules.orgName])],
    });
    if (problem) throw validationFailed([problem]);
    await this.verifyPasswordOf(input.user, input.currentPassword, input.context);
    const passwordHash = await this.deps.hasher.hash(next);
    await this.deps.repo.setPassword({
      userId: input.user.id,
      passwordHash,
      keepSessionId: input.session.id,
      throttleKey: throttleKey(input.user.email),
      at: this.deps.clock.now(),
      event: {
        action: 'password.changed',
        actor: { type: 'user', id: input.user.id },
        orgId: input.user.orgId,
        subjectId: input.user.id,
        pii: { userId: input.user.id, ...input.context },
      },
    });
  }

  /**
   * Always succeeds from the caller's view (202, no enumeration). For a real
   * account a single-use 30-minute token is mailed; only its hash is stored.
   */
  async requestReset(emailInput: string, context: RequestContext): Promise<void> {
    const email = normalizeEmail(emailInput);
    const user = await this.deps.users.byEmail(email);
    // A restricted account (GDPR Art. 18) is kept unchanged until the restriction is lifted.
    if (!user || user.status !== 'active') return;
    const now = this.deps.clock.now();
    if ((await this.deps.repo.countResetTokensSince(user.id, new Date(now.getTime() - HOUR))) >= RESET_EMAILS_PER_HOUR) return;
    const token = randomToken(32);
    await this.deps.repo.createResetToken(
      { id: newId(), userId: user.id, tokenHash: hashToken(token), expiresAt: new Date(now.getTime() + RESET_TOKEN_TTL_MS), createdAt: now },
      {
        action: 'password.reset_requested',
        actor: ANONYMOUS_ACTOR,
        orgId: user.orgId,
        subjectId: user.id,
        pii: { userId: user.id, ...context },
      },
    );
    const link = new URL('/password-reset', this.deps.publicUrl);
    link.searchParams.set('token', token);
    // Not awaited: an SMTP round trip only for real accounts would tell them
    // apart by timing (ASVS 6.3.8). The token is stored; a failed send is logged.
    this.deps.mailer
      .send({
        kind: 'password_reset',
        to: user.email,
        subject: 'Reset your Cleverom password',
        text: `Someone asked to reset the password of your Cleverom account.\n\nTo choose a new password, open this link within 30 minutes:\n${link.href}\n\nToken: ${token}\n\nIf this was not you, ignore this email; your password stays as it is.`,
      })
      .catch((error: unknown) => this.deps.onBackgroundError?.(error, 'password reset email'));
  }

  async confirmReset(token: string, newPasswordInput: string, context: RequestContext): Promise<void> {
    const next = normalizePassword(newPasswordInput);
    // Read-only look-up of the token's owner for the policy; the write below consumes it atomically.
    const owner = await this.deps.repo.resetTokenUser(hashToken(token), this.deps.clock.now());
    const user = owner === null ? null : await this.deps.users.byId(owner);
    const rules = await this.deps.passwordRules(user?.orgId ?? null);
    const problem = checkPassword({
      password: next,
      field: 'newPassword',
      minLength: rules.minLength,
      context: user ? [user.email, user.name, ...(rules.orgName === null ? [] : [rules.orgName])] : [],
    });
    if (problem) throw validationFailed([problem]);
    const passwordHash = await this.deps.hasher.hash(next);
    const userId = await this.deps.repo.completeReset({
      tokenHash: hashToken(token),
      now: this.deps.clock.now(),
      passwordHash,
      throttleKeyOf: throttleKey,
      event: (id, orgId) => ({
        action: 'password.reset_completed',
        actor: { type: 'user', id },
        orgId,
        subjectId: id,
        pii: { userId: id, ...context },
      }),
    });
    if (userId === null) {
      throw validationFailed([{ field: 'token', message: 'is invalid, used or expired' }]);
    }
  }

  private loginEvent(action: string, user: User | null, context: RequestContext, data: AuditEventInput['data']): AuditEventInput {
    return {
      action,
      actor: user ? { type: 'user', id: user.id } : ANONYMOUS_ACTOR,
      orgId: user?.orgId ?? null,
      subjectId: user?.id ?? null,
      data: data ?? {},
      pii: { userId: user?.id ?? null, ...context },
    };
  }
}

function lockedError(retryAfter: number): AppError {
  return new AppError('account_locked', {
    extra: { retryAfter },
    headers: { 'retry-after': String(retryAfter) },
  });
}
