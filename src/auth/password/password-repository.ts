import type BetterSqlite3 from 'better-sqlite3';
import type { AuditEventInput } from '../../audit/events.js';
import type { SqliteAuditLog } from '../../audit/sqlite-audit.js';
import type { SqliteDatabase } from '../../platform/db/sqlite.js';
import { insertSessionRow } from '../session/session-repository.js';
import type { NewSession } from '../session/session.js';
import { lockAfter, type ThrottleState } from './throttle.js';

export interface ResetTokenRecord {
  id: string;
  userId: string;
  tokenHash: string;
  expiresAt: Date;
  createdAt: Date;
}

/** Each write is one call that runs its own transaction, audit event included. */
export interface PasswordRepository {
  throttle(key: string): Promise<ThrottleState | null>;
  /** Count a failure for `key` and record `event`; returns the new state. */
  recordLoginFailure(key: string, now: Date, event: AuditEventInput): Promise<ThrottleState>;
  /** Record an event without touching the counter (e.g. an attempt refused while locked). */
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

export class SqlitePasswordRepository implements PasswordRepository {
  private readonly sqlite: BetterSqlite3.Database;
  private readonly getThrottle: BetterSqlite3.Statement<[string], { failures: number; locked_until: number | null }>;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly audit: SqliteAuditLog,
  ) {
    this.sqlite = database.sqlite;
    this.getThrottle = this.sqlite.prepare('SELECT failures, locked_until FROM login_throttle WHERE key = ?');
  }

  async throttle(key: string): Promise<ThrottleState | null> {
    const row = this.getThrottle.get(key);
    return row ? { failures: row.failures, lockedUntil: row.locked_until === null ? null : new Date(row.locked_until) } : null;
  }

  async recordLoginFailure(key: string, now: Date, event: AuditEventInput): Promise<ThrottleState> {
    return this.database.transaction(() => {
      const failures = (this.getThrottle.get(key)?.failures ?? 0) + 1;
      const lockedUntil = lockAfter(failures, now);
      this.sqlite
        .prepare(
          `INSERT INTO login_throttle (key, failures, locked_until, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until, updated_at = excluded.updated_at`,
        )
        .run(key, failures, lockedUntil?.getTime() ?? null, now.getTime());
      this.audit.append({ ...event, data: { ...event.data, consecutiveFailures: failures } });
      return { failures, lockedUntil };
    });
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
