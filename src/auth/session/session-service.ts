import type { RequestContext } from '../../audit/events.js';
import { HOUR, MINUTE, type Clock } from '../../platform/clock.js';
import { hashToken, randomToken } from '../../platform/crypto/tokens.js';
import { newId } from '../../platform/ids.js';
import type { SessionRepository } from './session-repository.js';
import type { User } from '../../users/user.js';
import type { Aal, AuthMethod, NewSession, Session, SessionContext } from './session.js';

/** How recent an authentication a sensitive route needs (`RoutePolicy.fresh`). */
export type FreshLevel = 'any' | 'second_factor';

export interface SessionPolicy {
  idleMinutes: number;
  absoluteHours: number;
}

/** Sensitive actions need an authentication within this window (SECURITY.md). */
export const REAUTH_WINDOW_MS = 10 * MINUTE;
/** `lastSeenAt` is written at most this often, to keep the hot path read-only. */
const TOUCH_INTERVAL_MS = MINUTE;

/** Session tokens are 43 characters (32 bytes, base64url); anything far off is not one. */
function plausibleToken(token: string): boolean {
  return token.length >= 32 && token.length <= 128;
}

export interface MintInput {
  userId: string;
  aal: Aal;
  authMethod: AuthMethod;
  context: RequestContext;
  /** Staff principals get a shorter lifetime (12 h absolute, 15 min idle). */
  staff?: boolean;
}

/** SECURITY.md: staff sessions — idle 15 min, absolute 12 h. */
export const STAFF_SESSION_POLICY: SessionPolicy = Object.freeze({ idleMinutes: 15, absoluteHours: 12 });

/**
 * Issue and validate sessions. Tokens are 256-bit random values; only their
 * SHA-256 is stored (ASVS 7.2.3). A new token is minted at every login and
 * every AAL change (ASVS 7.2.4); idle and absolute expiry are enforced here.
 */
export class SessionService {
  constructor(
    private readonly repo: SessionRepository,
    private readonly clock: Clock,
    private readonly policy: SessionPolicy,
  ) {}

  /** A new session value; the caller stores it in the transaction of its action. */
  mint(input: MintInput): NewSession {
    const now = this.clock.now();
    const policy = input.staff ? STAFF_SESSION_POLICY : this.policy;
    const token = randomToken(32);
    const session: Session = {
      id: newId(),
      userId: input.userId,
      aal: input.aal,
      authMethod: input.authMethod,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: new Date(now.getTime() + policy.absoluteHours * HOUR),
      idleTimeoutMs: policy.idleMinutes * MINUTE,
      // Logging in is itself a fresh authentication; at AAL2 it proved a second factor too.
      reauthenticatedAt: now,
      secondFactorAt: input.aal === 2 ? now : null,
      ip: input.context.ip,
      userAgent: input.context.userAgent?.slice(0, 512) ?? null,
    };
    return { token, tokenHash: hashToken(token), session };
  }

  /** The session for `token`, or null when unknown, expired (idle or absolute) or revoked. */
  async validate(token: string): Promise<SessionContext | null> {
    if (!plausibleToken(token)) return null;
    const found = await this.repo.findByTokenHash(hashToken(token));
    if (!found) return null;
    const state = this.stateOf(found);
    if (state === 'refused') return null;
    if (state === 'expired') {
      await this.repo.deleteExpired(found.session.id);
      return null;
    }
    if (state === 'touch') await this.repo.touch(found.session.id, this.clock.now());
    return found;
  }

  /**
   * `validate`'s answer when it needs no I/O: a session the repository
   * remembers (session-repository.ts) that needs no write (not expired, not
   * due a lastSeenAt touch). undefined: call `validate`. Performance (issue
   * 9): lets the route gate answer a session check without a promise.
   */
  validateNow(token: string): SessionContext | null | undefined {
    if (!plausibleToken(token)) return null;
    const found = this.repo.remembered(hashToken(token));
    if (found === undefined) return undefined;
    const state = this.stateOf(found);
    if (state === 'live') return found;
    return state === 'refused' ? null : undefined;
  }

  /** The rules every check applies, in order; 'expired' and 'touch' need a write. */
  private stateOf(found: SessionContext): 'live' | 'refused' | 'expired' | 'touch' {
    const now = this.clock.now().getTime();
    const { session } = found;
    // GDPR Art. 18: restriction revokes every session in its transaction; this
    // also refuses one issued by a login that raced with it.
    if (found.user.status !== 'active') return 'refused';
    if (now >= session.expiresAt.getTime() || now - session.lastSeenAt.getTime() >= session.idleTimeoutMs) return 'expired';
    return now - session.lastSeenAt.getTime() >= TOUCH_INTERVAL_MS ? 'touch' : 'live';
  }

  /**
   * Whether the session authenticated recently enough for a sensitive action
   * (SECURITY.md "session lifetime": within 10 minutes). `any`: a login or
   * reauthentication of any kind; `second_factor`: a second factor proven
   * within the window (SECURITY.md "staff": requesting, approving and
   * break-glass need a second factor within the last 10 minutes).
   */
  isRecentlyAuthenticated(session: Session, level: FreshLevel): boolean {
    const at = (level === 'second_factor' ? session.secondFactorAt : session.reauthenticatedAt)?.getTime();
    return at !== undefined && this.clock.now().getTime() - at < REAUTH_WINDOW_MS;
  }

  list(userId: string): Promise<Session[]> {
    return this.repo.listForUser(userId);
  }

  /** Revoke one of `user`'s sessions (logout, or "sign out" of a device). False when not theirs. */
  revoke(user: User, sessionId: string, action: 'auth.logout' | 'session.revoked', context: RequestContext): Promise<boolean> {
    return this.repo.revoke(user.id, sessionId, {
      action,
      actor: { type: 'user', id: user.id },
      orgId: user.orgId,
      subjectId: user.id,
      data: { sessionId },
      pii: { userId: user.id, ...context },
    });
  }

  /** Revoke every session of `user` but `keepSessionId`. */
  revokeOthers(user: User, keepSessionId: string, context: RequestContext): Promise<number> {
    return this.repo.revokeOthers(user.id, keepSessionId, {
      action: 'session.revoked_others',
      actor: { type: 'user', id: user.id },
      orgId: user.orgId,
      subjectId: user.id,
      data: { keptSessionId: keepSessionId },
      pii: { userId: user.id, ...context },
    });
  }

  /**
   * `POST /v1/me/reauthenticate` succeeded: the session continues under a new
   * token and the old one ends (ASVS 7.2.4: a new token on reauthentication),
   * fresh for 10 minutes. The login's lifetime, assurance level and method
   * carry over: reauthenticating never extends the absolute expiry. A code
   * also records a second factor (`secondFactorAt`); a password does not.
   * Null when the session ended meanwhile (nothing is written then).
   */
  async reauthenticated(user: User, session: Session, method: 'password' | 'totp', context: RequestContext): Promise<NewSession | null> {
    const now = this.clock.now();
    const token = randomToken(32);
    const next: NewSession = {
      token,
      tokenHash: hashToken(token),
      session: {
        ...session,
        id: newId(),
        lastSeenAt: now,
        reauthenticatedAt: now,
        secondFactorAt: method === 'totp' ? now : session.secondFactorAt,
        ip: context.ip,
        userAgent: context.userAgent?.slice(0, 512) ?? null,
      },
    };
    const rotated = await this.repo.rotate(session.id, next, {
      action: 'auth.reauthenticated',
      actor: { type: 'user', id: user.id },
      orgId: user.orgId,
      subjectId: user.id,
      data: { sessionId: next.session.id, previousSessionId: session.id, method },
      pii: { userId: user.id, ...context },
    });
    return rotated ? next : null;
  }
}
