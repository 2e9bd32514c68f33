import type BetterSqlite3 from 'better-sqlite3';
import type { AuditEventInput } from '../../audit/events.js';
import type { SqliteAuditLog } from '../../audit/sqlite-audit.js';
import type { SqliteDatabase } from '../../platform/db/sqlite.js';
import { insertSessionRow } from '../session/session-repository.js';
import type { NewSession } from '../session/session.js';
import { DISABLE_AFTER_FAILURES, FREE_FAILURES, LOCKED_FOR_GOOD, MAX_LOCK_SECONDS, type AttemptReservation } from './throttle.js';

export interface ResetTokenRecord {
  id: string;
  userId: string;
  tokenHash: string;
  expiresAt: Date;
  createdAt: Date;
}

/** Each write is one call that runs its own transaction, audit event included. */
export interface PasswordRepository {
  /**
   * Decide, in one conditional write, whether an attempt for `key` may check
   * a password now: refused while locked; otherwise the attempt is counted
   * as a failure (and the lock it would cause is set) before any hash runs.
   * A correct password clears the counter afterwards (`recordLoginSuccess`,
   * `clearThrottle`); a wrong one needs no further write to the counter.
   */
  reserveAttempt(key: string, now: Date): Promise<AttemptReservation>;
  /** Give back a reservation whose attempt checked no password (the argon2 queue refused it). */
  releaseAttempt(key: string, now: Date): Promise<void>;
  /** Clear the counter of `key` (a correct password outside a login). */
  clearThrottle(key: string): Promise<void>;
  /** Record an event without touching the counter (a failure already reserved, a refusal while locked). */
  recordEvent(event: AuditEventInput): Promise<void>;
  /** Reset the counter, store a session (if any) and a rehashed password (if any). */
  recordLoginSuccess(input: {
    throttleKey: string;
    userId: string;
    rehash: string | null;
    session: NewSession | null;
    event: AuditEventInput;
  }): Promise<void>;
  /** Set a new password hash; revoke every session but `keepSessionId` (all when null). */
  setPassword(input: {
    userId: string;
    passwordHash: string;
    keepSessionId: string | null;
    throttleKey: string;
    at: Date;
    event: AuditEventInput;
  }): Promise<void>;
  countResetTokensSince(userId: string, since: Date): Promise<number>;
  /** The user of an unused, unexpired reset token (read only). */
  resetTokenUser(tokenHash: string, now: Date): Promise<string | null>;
  createResetToken(token: ResetTokenRecord, event: AuditEventInput): Promise<void>;
  /**
   * Consume a reset token atomically (single use, unexpired) and set the new
   * password in the same transaction; revokes every session and every other
   * outstanding token of the user. Returns the user id, or null.
   */
  completeReset(input: {
    tokenHash: string;
    now: Date;
    passwordHash: string;
    throttleKeyOf: (email: string) => string;
    event: (userId: string, orgId: string | null) => AuditEventInput;
  }): Promise<string | null>;
}

/**
 * The lock after `n` consecutive failures, as SQL over the parameters of
 * `THROTTLE_PARAMS` (throttle.ts): none below 5; then 2^(n−5) s, at most
 * 15 min; from 100 on, until a password reset. `n` is an SQL expression.
 */
function lockAfterSql(n: string): string {
  return `CASE WHEN ${n} >= @disableAfter THEN @lockedForGood
               WHEN ${n} >= @free THEN @now + 1000 * min(@maxLockSeconds, 1 << min(${n} - @free, 30))
               ELSE NULL END`;
}

const THROTTLE_PARAMS = {
  free: FREE_FAILURES,
  disableAfter: DISABLE_AFTER_FAILURES,
  maxLockSeconds: MAX_LOCK_SECONDS,
  lockedForGood: LOCKED_FOR_GOOD.getTime(),
} as const;

export class SqlitePasswordRepository implements PasswordRepository {
  private readonly sqlite: BetterSqlite3.Database;
  private readonly reserveStmt: BetterSqlite3.Statement<[Record<string, string | number>], { failures: number }>;
  private readonly lockStmt: BetterSqlite3.Statement<[string], { locked_until: number | null }>;
  private readonly releaseStmt: BetterSqlite3.Statement<[Record<string, string | number>]>;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly audit: SqliteAuditLog,
  ) {
    this.sqlite = database.sqlite;
    // Issue 23 item 1: the read of the counter and the count of this attempt
    // are one statement. The upsert's WHERE refuses the update while a lock is
    // in force, so no row comes back and the attempt runs no hash; otherwise
    // the incremented row, with the lock it now carries, is the answer. On
    // PostgreSQL the same INSERT … ON CONFLICT DO UPDATE … WHERE … RETURNING
    // re-reads the locked row, so instances sharing a database agree.
    this.reserveStmt = this.sqlite.prepare(
      `INSERT INTO login_throttle (key, failures, locked_until, updated_at)
       VALUES (@key, 1, ${lockAfterSql('1')}, @now)
       ON CONFLICT (key) DO UPDATE SET
         failures = login_throttle.failures + 1,
         locked_until = ${lockAfterSql('login_throttle.failures + 1')},
         updated_at = @now
       WHERE login_throttle.locked_until IS NULL OR login_throttle.locked_until <= @now
       RETURNING failures`,
    );
    this.lockStmt = this.sqlite.prepare('SELECT locked_until FROM login_throttle WHERE key = ?');
    // The lock this reservation added goes with it; a longer one already in force stays (capped below the reset-only lock).
    this.releaseStmt = this.sqlite.prepare(
      `UPDATE login_throttle SET
         failures = failures - 1,
         locked_until = CASE WHEN failures - 1 < @free THEN NULL
                             WHEN failures - 1 < @disableAfter THEN min(locked_until, @now + 1000 * @maxLockSeconds)
                             ELSE locked_until END,
         updated_at = @now
       WHERE key = @key AND failures > 0`,
    );
  }

  async reserveAttempt(key: string, now: Date): Promise<AttemptReservation> {
    return this.database.transaction((): AttemptReservation => {
      const reserved = this.reserveStmt.get({ ...THROTTLE_PARAMS, key, now: now.getTime() });
      if (reserved) return { kind: 'reserved', failures: reserved.failures };
      const lockedUntil = this.lockStmt.get(key)?.locked_until ?? null;
      if (lockedUntil === null) throw new Error('login_throttle refused a reservation without a lock');
      return { kind: 'locked', lockedUntil: new Date(lockedUntil) };
    });
  }

  async releaseAttempt(key: string, now: Date): Promise<void> {
    this.releaseStmt.run({ ...THROTTLE_PARAMS, key, now: now.getTime() });
  }

  async clearThrottle(key: string): Promise<void> {
    this.database.statement('DELETE FROM login_throttle WHERE key = ?').run(key);
  }

  async recordEvent(event: AuditEventInput): Promise<void> {
    this.database.transaction(() => this.audit.append(event));
  }

  async recordLoginSuccess(input: {
    throttleKey: string;
    userId: string;
    rehash: string | null;
    session: NewSession | null;
    event: AuditEventInput;
  }): Promise<void> {
    this.database.transaction(() => {
      this.database.statement('DELETE FROM login_throttle WHERE key = ?').run(input.throttleKey);
      if (input.rehash !== null) {
        const at = input.session?.session.createdAt.getTime() ?? Date.now();
        this.sqlite.prepare('UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?').run(input.rehash, at, input.userId);
      }
      if (input.session) insertSessionRow(this.database, input.session);
      this.audit.append(input.event);
    });
  }

  async setPassword(input: {
    userId: string;
    passwordHash: string;
    keepSessionId: string | null;
    throttleKey: string;
    at: Date;
    event: AuditEventInput;
  }): Promise<void> {
    this.database.transaction(() => {
      this.sqlite.prepare('UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?').run(input.passwordHash, input.at.getTime(), input.userId);
      const revoked = this.sqlite.prepare('DELETE FROM sessions WHERE user_id = ? AND id IS NOT ?').run(input.userId, input.keepSessionId);
      this.sqlite.prepare('DELETE FROM login_throttle WHERE key = ?').run(input.throttleKey);
      this.audit.append({ ...input.event, data: { ...input.event.data, sessionsRevoked: revoked.changes } });
    });
  }

  async countResetTokensSince(userId: string, since: Date): Promise<number> {
    const row = this.sqlite
      .prepare('SELECT COUNT(*) AS n FROM password_reset_tokens WHERE user_id = ? AND created_at >= ?')
      .get(userId, since.getTime()) as { n: number };
    return row.n;
  }

  async resetTokenUser(tokenHash: string, now: Date): Promise<string | null> {
    const row = this.sqlite
      .prepare('SELECT user_id FROM password_reset_tokens WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?')
      .get(tokenHash, now.getTime()) as { user_id: string } | undefined;
    return row?.user_id ?? null;
  }

  async createResetToken(token: ResetTokenRecord, event: AuditEventInput): Promise<void> {
    this.database.transaction(() => {
      this.sqlite
        .prepare('INSERT INTO password_reset_tokens (id, user_id, token_hash, expires_at, used_at, created_at) VALUES (?, ?, ?, ?, NULL, ?)')
        .run(token.id, token.userId, token.tokenHash, token.expiresAt.getTime(), token.createdAt.getTime());
      this.audit.append(event);
    });
  }

  async completeReset(input: {
    tokenHash: string;
    now: Date;
    passwordHash: string;
    throttleKeyOf: (email: string) => string;
    event: (userId: string, orgId: string | null) => AuditEventInput;
  }): Promise<string | null> {
    return this.database.transaction(() => {
      const now = input.now.getTime();
      // Single use: the UPDATE consumes the token only if unused and unexpired.
      const token = this.sqlite
        .prepare('UPDATE password_reset_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ? RETURNING user_id')
        .get(now, input.tokenHash, now) as { user_id: string } | undefined;
      if (!token) return null;
      const user = this.sqlite.prepare('SELECT email, org_id FROM users WHERE id = ?').get(token.user_id) as
        | { email: string; org_id: string | null }
        | undefined;
      if (!user) return null;
      this.sqlite.prepare('UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?').run(input.passwordHash, now, token.user_id);
      const revoked = this.sqlite.prepare('DELETE FROM sessions WHERE user_id = ?').run(token.user_id);
      this.sqlite.prepare('DELETE FROM password_reset_tokens WHERE user_id = ? AND used_at IS NULL').run(token.user_id);
      // A reset also lifts the 100-failure disable (NIST ceiling) for the account.
      this.sqlite.prepare('DELETE FROM login_throttle WHERE key = ?').run(input.throttleKeyOf(user.email));
      const event = input.event(token.user_id, user.org_id);
      this.audit.append({ ...event, data: { ...event.data, sessionsRevoked: revoked.changes } });
      return token.user_id;
    });
  }
}
