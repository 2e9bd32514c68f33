import type BetterSqlite3 from 'better-sqlite3';
import type { AuditEventInput } from '../../audit/events.js';
import type { SqliteAuditLog } from '../../audit/sqlite-audit.js';
import type { SqliteDatabase } from '../../platform/db/sqlite.js';
import type { MfaChallenge } from '../challenge/challenge.js';
import { insertSessionRow } from '../session/session-repository.js';
import type { NewSession } from '../session/session.js';

export type FactorStatus = 'pending' | 'confirmed';

export interface TotpFactor {
  userId: string;
  secretSealed: string;
  status: FactorStatus;
  lastUsedStep: number | null;
  failures: number;
  lockedUntil: Date | null;
  confirmedAt: Date | null;
}

/** How a second-factor proof is spent, atomically with what it unlocks. */
export type Proof =
  | { kind: 'totp'; step: number }
  | { kind: 'recovery'; codeHash: string };

export interface RecoveryCodeRecord {
  id: string;
  codeHash: string;
}

/** TOTP factors, recovery codes and MFA challenges. Each write is one transaction with its audit event(s). */
export interface TotpRepository {
  factor(userId: string): Promise<TotpFactor | null>;
  /** Start (or restart) enrolment with a new pending secret. */
  savePending(userId: string, secretSealed: string, at: Date, event: AuditEventInput): Promise<void>;
  /**
   * Confirm a pending factor with the step of a valid code, store the
   * recovery codes, and rotate the session to AAL2. False when the factor is
   * no longer pending (a concurrent confirmation won).
   */
  confirm(input: {
    userId: string;
    step: number;
    at: Date;
    codes: RecoveryCodeRecord[];
    rotate: { oldSessionId: string; next: NewSession } | null;
    event: AuditEventInput;
  }): Promise<boolean>;
  /** Spend a proof (TOTP step or recovery code); false when replayed or already used. */
  spendProof(userId: string, proof: Proof, at: Date, event: AuditEventInput): Promise<boolean>;
  /**
   * Count a wrong code (and the challenge's failures, when given). When the
   * new count is a multiple of `backoff.every`, lock until `backoff.until` —
   * decided on the incremented row, so concurrent failures cannot skip a lock.
   * When the count of a confirmed factor reaches `ceiling.at`, `ceiling.event`
   * is recorded in the same transaction and the answer is `ceiling_reached`:
   * exactly one failure, however many run at once, crosses it.
   */
  recordFailure(input: {
    userId: string;
    challengeId: string | null;
    backoff: { every: number; until: Date } | null;
    ceiling: { at: number; event: AuditEventInput } | null;
    event: AuditEventInput;
  }): Promise<'counted' | 'ceiling_reached'>;
  removeFactor(userId: string, event: AuditEventInput): Promise<boolean>;
  replaceRecoveryCodes(userId: string, codes: RecoveryCodeRecord[], at: Date, event: AuditEventInput): Promise<void>;
  unusedRecoveryCodes(userId: string): Promise<number>;

  createChallenge(input: { id: string; userId: string; tokenHash: string; createdAt: Date; expiresAt: Date }): Promise<void>;
  challengeByTokenHash(tokenHash: string): Promise<MfaChallenge | null>;
  /**
   * The MFA login step: consume the challenge (single use), spend the proof,
   * reset the backoff and issue the AAL2 session — all or nothing.
   */
  completeChallenge(input: { challengeId: string; userId: string; proof: Proof; session: NewSession; at: Date; events: AuditEventInput[] }): Promise<boolean>;
}

interface FactorRow {
  user_id: string;
  secret_sealed: string;
  status: string;
  last_used_step: number | null;
  failures: number;
  locked_until: number | null;
  confirmed_at: number | null;
}

export class SqliteTotpRepository implements TotpRepository {
  private readonly sqlite: BetterSqlite3.Database;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly audit: SqliteAuditLog,
  ) {
    this.sqlite = database.sqlite;
  }

  async factor(userId: string): Promise<TotpFactor | null> {
    const row = this.database.statement('SELECT * FROM totp_factors WHERE user_id = ?').get(userId) as FactorRow | undefined;
    if (!row) return null;
    return {
      userId: row.user_id,
      secretSealed: row.secret_sealed,
      status: row.status as FactorStatus,
      lastUsedStep: row.last_used_step,
      failures: row.failures,
      lockedUntil: row.locked_until === null ? null : new Date(row.locked_until),
      confirmedAt: row.confirmed_at === null ? null : new Date(row.confirmed_at),
    };
  }

  async savePending(userId: string, secretSealed: string, at: Date, event: AuditEventInput): Promise<void> {
    this.database.transaction(() => {
      this.sqlite
        .prepare(
          `INSERT INTO totp_factors (user_id, secret_sealed, status, last_used_step, failures, locked_until, created_at, confirmed_at)
           VALUES (?, ?, 'pending', NULL, 0, NULL, ?, NULL)
           ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, created_at = excluded.created_at
           WHERE totp_factors.status = 'pending'`,
        )
        .run(userId, secretSealed, at.getTime());
      this.audit.append(event);
    });
  }

  async confirm(input: {
    userId: string;
    step: number;
    at: Date;
    codes: RecoveryCodeRecord[];
    rotate: { oldSessionId: string; next: NewSession } | null;
    event: AuditEventInput;
  }): Promise<boolean> {
    const lost = Symbol('lost');
    try {
      return this.database.transaction(() => {
        const changed = this.sqlite
          .prepare("UPDATE totp_factors SET status = 'confirmed', confirmed_at = ?, last_used_step = ?, failures = 0, locked_until = NULL WHERE user_id = ? AND status = 'pending'")
          .run(input.at.getTime(), input.step, input.userId);
        if (changed.changes !== 1) throw lost;
        this.writeRecoveryCodes(input.userId, input.codes, input.at);
        if (input.rotate) {
          this.sqlite.prepare('DELETE FROM sessions WHERE id = ?').run(input.rotate.oldSessionId);
          insertSessionRow(this.database, input.rotate.next);
        }
        this.audit.append(input.event);
        return true;
      });
    } catch (error) {
      if (error === lost) return false;
      throw error;
    }
  }

  /** Spend a proof inside a transaction; false when replayed or used. */
  private spend(userId: string, proof: Proof, at: Date): boolean {
    if (proof.kind === 'totp') {
      // RFC 6238 §5.2: accept a step only if it is after the last accepted one.
      // The conditional UPDATE makes two concurrent submissions of one code race
      // for a single row change: exactly one wins.
      const result = this.sqlite
        .prepare("UPDATE totp_factors SET last_used_step = ?, failures = 0, locked_until = NULL WHERE user_id = ? AND status = 'confirmed' AND (last_used_step IS NULL OR last_used_step < ?)")
        .run(proof.step, userId, proof.step);
      return result.changes === 1;
    }
    const used = this.sqlite
      .prepare('UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL')
      .run(at.getTime(), userId, proof.codeHash);
    if (used.changes !== 1) return false;
    this.sqlite.prepare('UPDATE totp_factors SET failures = 0, locked_until = NULL WHERE user_id = ?').run(userId);
    return true;
  }

  async spendProof(userId: string, proof: Proof, at: Date, event: AuditEventInput): Promise<boolean> {
    return this.database.transaction(() => {
      if (!this.spend(userId, proof, at)) return false;
      this.audit.append(event);
      return true;
    });
  }

  async recordFailure(input: {
    userId: string;
    challengeId: string | null;
    backoff: { every: number; until: Date } | null;
    ceiling: { at: number; event: AuditEventInput } | null;
    event: AuditEventInput;
  }): Promise<'counted' | 'ceiling_reached'> {
    return this.database.transaction(() => {
      const updated = this.sqlite
        .prepare(
          `UPDATE totp_factors SET failures = failures + 1,
             locked_until = CASE WHEN @every > 0 AND (failures + 1) % @every = 0 THEN @until ELSE locked_until END
           WHERE user_id = @userId RETURNING failures, status`,
        )
        .get({ every: input.backoff?.every ?? 0, until: input.backoff?.until.getTime() ?? null, userId: input.userId }) as
        | { failures: number; status: string }
        | undefined;
      if (input.challengeId) this.sqlite.prepare('UPDATE mfa_challenges SET failures = failures + 1 WHERE id = ?').run(input.challengeId);
      this.audit.append(updated ? { ...input.event, data: { ...input.event.data, consecutiveFailures: updated.failures } } : input.event);
      // Decided on the incremented row: only the failure that makes the count equal the ceiling crosses it.
      const crossed = input.ceiling !== null && updated?.status === 'confirmed' && updated.failures === input.ceiling.at;
      if (crossed && input.ceiling) this.audit.append(input.ceiling.event);
      return crossed ? 'ceiling_reached' : 'counted';
    });
  }

  async removeFactor(userId: string, event: AuditEventInput): Promise<boolean> {
    return this.database.transaction(() => {
      const removed = this.sqlite.prepare('DELETE FROM totp_factors WHERE user_id = ?').run(userId);
      this.sqlite.prepare('DELETE FROM recovery_codes WHERE user_id = ?').run(userId);
      this.sqlite.prepare('DELETE FROM mfa_challenges WHERE user_id = ?').run(userId);
      if (removed.changes === 0) return false;
      this.audit.append(event);
      return true;
    });
  }

  private writeRecoveryCodes(userId: string, codes: RecoveryCodeRecord[], at: Date): void {
    this.sqlite.prepare('DELETE FROM recovery_codes WHERE user_id = ?').run(userId);
    const insert = this.sqlite.prepare('INSERT INTO recovery_codes (id, user_id, code_hash, used_at, created_at) VALUES (?, ?, ?, NULL, ?)');
    for (const code of codes) insert.run(code.id, userId, code.codeHash, at.getTime());
  }

  async replaceRecoveryCodes(userId: string, codes: RecoveryCodeRecord[], at: Date, event: AuditEventInput): Promise<void> {
    this.database.transaction(() => {
      this.writeRecoveryCodes(userId, codes, at);
      this.audit.append(event);
    });
  }

  async unusedRecoveryCodes(userId: string): Promise<number> {
    return (this.sqlite.prepare('SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = ? AND used_at IS NULL').get(userId) as { n: number }).n;
  }

  async createChallenge(input: { id: string; userId: string; tokenHash: string; createdAt: Date; expiresAt: Date }): Promise<void> {
    this.sqlite
      .prepare('INSERT INTO mfa_challenges (id, user_id, token_hash, failures, created_at, expires_at, consumed_at) VALUES (?, ?, ?, 0, ?, ?, NULL)')
      .run(input.id, input.userId, input.tokenHash, input.createdAt.getTime(), input.expiresAt.getTime());
  }

  async challengeByTokenHash(tokenHash: string): Promise<MfaChallenge | null> {
    const row = this.sqlite.prepare('SELECT * FROM mfa_challenges WHERE token_hash = ?').get(tokenHash) as
      | { id: string; user_id: string; failures: number; expires_at: number; consumed_at: number | null }
      | undefined;
    if (!row) return null;
    return {
      id: row.id,
      userId: row.user_id,
      failures: row.failures,
      expiresAt: new Date(row.expires_at),
      consumedAt: row.consumed_at === null ? null : new Date(row.consumed_at),
    };
  }

  async completeChallenge(input: { challengeId: string; userId: string; proof: Proof; session: NewSession; at: Date; events: AuditEventInput[] }): Promise<boolean> {
    const refused = Symbol('refused');
    try {
      return this.database.transaction(() => {
        const now = input.at.getTime();
        // Single use: only one request can move consumed_at from NULL.
        const consumed = this.sqlite
          .prepare('UPDATE mfa_challenges SET consumed_at = ? WHERE id = ? AND consumed_at IS NULL AND expires_at > ? AND failures < 10')
          .run(now, input.challengeId, now);
        if (consumed.changes !== 1) throw refused;
        if (!this.spend(input.userId, input.proof, input.at)) throw refused;
        insertSessionRow(this.database, input.session);
        for (const event of input.events) this.audit.append(event);
        return true;
      });
    } catch (error) {
      if (error === refused) return false;
      throw error;
    }
  }
}
