import type BetterSqlite3 from 'better-sqlite3';
import type { AuditEventInput } from '../audit/events.js';
import type { SqliteAuditLog } from '../audit/sqlite-audit.js';
import type { SqliteDatabase } from '../platform/db/sqlite.js';
import { currentConsents, type ConsentPurpose, type ConsentState } from './consents.js';
import type { ErasureSubject, ExportSections, PrivacyContributor, PrivacySubject } from './contributor.js';

export type TokenPurpose = 'email_change' | 'restriction_lift';

export interface PrivacyTokenRecord {
  id: string;
  userId: string;
  tokenHash: string;
  createdAt: Date;
  expiresAt: Date;
}

/** Who the request is about, as the caller sees it; `orgId` pins the organization for controller requests. */
export interface TargetRef {
  userId: string;
  /** For `/v1/orgs/:orgId/...` requests: the person must (still) be a member of it. */
  orgId?: string;
}

/**
 * A per-account limit on exports, counted from the audit log: at most `max`
 * `event.action` events by the same actor in `windowMs` before `at`. Past it,
 * `refusal` is recorded instead of the export.
 */
export interface ExportQuota {
  max: number;
  windowMs: number;
  at: Date;
  refusal: AuditEventInput;
}
export type ExportOutcome = { kind: 'exported'; sections: ExportSections } | { kind: 'rate_limited'; retryAt: Date };
/** `addresses`: every email address known for the erased person, for copies outside the database (the outbox). */
export type EraseOutcome = { kind: 'erased'; organizationDeleted: boolean; addresses: string[] } | { kind: 'not_found' } | { kind: 'last_owner'; soleMember: boolean };
/**
 * What happens to the organization of its last owner: `keep` refuses the
 * erasure (ownership must be handed over first); `delete_if_sole_member`
 * deletes the organization too when nobody else is in it.
 */
export type OrgPolicy = 'keep' | 'delete_if_sole_member';
export type RestrictOutcome = { kind: 'done'; changed: boolean; sessionsRevoked: number } | { kind: 'not_found' };
export type EmailChangeOutcome = { kind: 'changed'; userId: string } | { kind: 'invalid_token' } | { kind: 'email_taken' };

/**
 * The data-subject rights. Each call is ONE transaction holding the change
 * and its audit event (DESIGN.md rule 10); export and erasure run every
 * feature's {@link PrivacyContributor} inside it.
 */
export interface PrivacyRepository {
  /**
   * All sections about the person, read in the transaction that records the
   * export — unless the caller is over `quota`, counted in that same
   * transaction (then only the refusal is recorded).
   */
  export(subject: PrivacySubject, event: AuditEventInput, quota: ExportQuota): Promise<ExportOutcome>;
  /**
   * Erase the person: every contributor's hook, then the account, then the
   * event — unless they are the last owner of their organization (see
   * {@link OrgPolicy}).
   */
  erase(target: TargetRef, orgPolicy: OrgPolicy, event: AuditEventInput): Promise<EraseOutcome>;
  /**
   * After an erasure has committed: make sure no older copy of the erased
   * rows stays in the storage's files (SQLite: checkpoint and truncate the
   * WAL). One attempt; false when it could not be done now (retry later).
   */
  scrubAfterErasure(): Promise<boolean>;
  /**
   * Restrict (revoking every session and pending MFA challenge) or lift. Any
   * outstanding lift token is voided; `liftToken` stores a new one.
   */
  setRestriction(input: { target: TargetRef; restricted: boolean; liftToken: PrivacyTokenRecord | null; at: Date; event: AuditEventInput }): Promise<RestrictOutcome>;
  /** Spend a lift token (single use, unexpired) and lift; the user id, or null. */
  liftWithToken(tokenHash: string, at: Date, event: (userId: string, orgId: string | null) => AuditEventInput): Promise<string | null>;
  /**
   * Rectification (GDPR Art. 16): name and/or phone at once, and/or an
   * email-change token (voiding earlier ones), each change with its event.
   * `email_taken` writes nothing at all.
   */
  rectify(input: {
    userId: string;
    at: Date;
    fields: { changes: { name?: string; phone?: string | null }; event: AuditEventInput } | null;
    emailChange: { token: PrivacyTokenRecord & { newEmail: string }; event: AuditEventInput } | null;
  }): Promise<'ok' | 'email_taken'>;
  /** Spend an email-change token of `userId` and switch the address. */
  confirmEmailChange(input: { userId: string; tokenHash: string; at: Date; event: AuditEventInput }): Promise<EmailChangeOutcome>;
  /** The current choices, read in the transaction that records the read. */
  readConsents(userId: string, event: AuditEventInput): Promise<ConsentState>;
  /** Store one history row per purpose whose value changes; returns the new state. */
  changeConsents(input: {
    userId: string;
    choices: Partial<Record<ConsentPurpose, boolean>>;
    source: string;
    at: Date;
    newId: () => string;
    event: AuditEventInput;
  }): Promise<{ state: ConsentState; changed: ConsentPurpose[] }>;
}

interface TargetRow {
  id: string;
  email: string;
  org_id: string | null;
  role: string | null;
  status: string;
}

export class SqlitePrivacyRepository implements PrivacyRepository {
  private readonly sqlite: BetterSqlite3.Database;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly audit: SqliteAuditLog,
    private readonly contributors: readonly PrivacyContributor[],
  ) {
    this.sqlite = database.sqlite;
  }

  private target(ref: TargetRef): TargetRow | null {
    const row = this.sqlite.prepare('SELECT id, email, org_id, role, status FROM users WHERE id = ?').get(ref.userId) as TargetRow | undefined;
    if (!row || (ref.orgId !== undefined && row.org_id !== ref.orgId)) return null;
    return row;
  }

  async export(subject: PrivacySubject, event: AuditEventInput, quota: ExportQuota): Promise<ExportOutcome> {
    return this.database.transaction((): ExportOutcome => {
      const actorId = event.actor.id;
      if (actorId !== null) {
        const since = new Date(quota.at.getTime() - quota.windowMs);
        const oldestCounted = this.audit.nthRecent({ action: event.action, actorId, since, n: quota.max });
        if (oldestCounted !== null) {
          // The refusal commits (it is the record of the attempt); no section is read.
          this.audit.append(quota.refusal);
          return { kind: 'rate_limited', retryAt: new Date(oldestCounted.getTime() + quota.windowMs) };
        }
      }
      const sections: ExportSections = {};
      for (const contributor of this.contributors) {
        for (const [name, value] of Object.entries(contributor.export(this.sqlite, subject))) {
          if (name in sections) throw new Error(`privacy export section "${name}" is produced twice (contributor ${contributor.name})`);
          sections[name] = value;
        }
      }
      this.audit.append(event);
      return { kind: 'exported', sections };
    });
  }

  async erase(ref: TargetRef, orgPolicy: OrgPolicy, event: AuditEventInput): Promise<EraseOutcome> {
    return this.database.transaction((): EraseOutcome => {
      const row = this.target(ref);
      if (!row) return { kind: 'not_found' };
      let deleteOrg: string | null = null;
      if (row.role === 'owner' && row.org_id !== null) {
        const count = (sql: string): number => (this.sqlite.prepare(sql).get(row.org_id, row.id) as { n: number }).n;
        if (count("SELECT COUNT(*) AS n FROM users WHERE org_id = ? AND role = 'owner' AND id != ?") === 0) {
          const soleMember = count('SELECT COUNT(*) AS n FROM users WHERE org_id = ? AND id != ?') === 0;
          if (!soleMember || orgPolicy !== 'delete_if_sole_member') return { kind: 'last_owner', soleMember };
          deleteOrg = row.org_id;
        }
      }
      const subject: ErasureSubject = { userId: row.id, email: row.email, orgId: row.org_id, ips: new Set(), emails: new Set([row.email]) };
      for (const contributor of this.contributors) contributor.erase(this.sqlite, subject);
      // Everything of the organization goes with it (its tables cascade); audit rows keep its id.
      if (deleteOrg !== null) this.sqlite.prepare('DELETE FROM orgs WHERE id = ?').run(deleteOrg);
      this.audit.append({ ...event, data: { ...event.data, organizationDeleted: deleteOrg !== null } });
      return { kind: 'erased', organizationDeleted: deleteOrg !== null, addresses: [...subject.emails] };
    });
  }

  /** GDPR Art. 17: the WAL still holds page images from before the erasure until it is checkpointed and truncated. */
  async scrubAfterErasure(): Promise<boolean> {
    return this.database.checkpointTruncate();
  }

  async setRestriction(input: { target: TargetRef; restricted: boolean; liftToken: PrivacyTokenRecord | null; at: Date; event: AuditEventInput }): Promise<RestrictOutcome> {
    return this.database.transaction((): RestrictOutcome => {
      const row = this.target(input.target);
      if (!row) return { kind: 'not_found' };
      const status = input.restricted ? 'restricted' : 'active';
      const changed = row.status !== status;
      if (changed) this.sqlite.prepare('UPDATE users SET status = ?, updated_at = ? WHERE id = ?').run(status, input.at.getTime(), row.id);
      let sessionsRevoked = 0;
      if (input.restricted) {
        sessionsRevoked = this.sqlite.prepare('DELETE FROM sessions WHERE user_id = ?').run(row.id).changes;
        this.sqlite.prepare('DELETE FROM mfa_challenges WHERE user_id = ?').run(row.id);
      }
      this.sqlite.prepare("DELETE FROM privacy_tokens WHERE user_id = ? AND purpose = 'restriction_lift'").run(row.id);
      if (input.liftToken) this.insertToken('restriction_lift', input.liftToken, null);
      this.audit.append({ ...input.event, data: { ...input.event.data, changed, sessionsRevoked } });
      return { kind: 'done', changed, sessionsRevoked };
    });
  }

  async liftWithToken(tokenHash: string, at: Date, event: (userId: string, orgId: string | null) => AuditEventInput): Promise<string | null> {
    return this.database.transaction(() => {
      const token = this.spendToken('restriction_lift', tokenHash, at);
      if (!token) return null;
      const user = this.sqlite.prepare("UPDATE users SET status = 'active', updated_at = ? WHERE id = ? AND status = 'restricted' RETURNING org_id").get(at.getTime(), token.user_id) as
        | { org_id: string | null }
        | undefined;
      if (!user) return null;
      this.audit.append(event(token.user_id, user.org_id));
      return token.user_id;
    });
  }

  async rectify(input: {
    userId: string;
    at: Date;
    fields: { changes: { name?: string; phone?: string | null }; event: AuditEventInput } | null;
    emailChange: { token: PrivacyTokenRecord & { newEmail: string }; event: AuditEventInput } | null;
  }): Promise<'ok' | 'email_taken'> {
    return this.database.transaction(() => {
      const { emailChange, fields } = input;
      if (emailChange) {
        if (this.sqlite.prepare('SELECT 1 FROM users WHERE email = ?').get(emailChange.token.newEmail) !== undefined) return 'email_taken';
        // Only the latest request counts.
        this.sqlite.prepare("DELETE FROM privacy_tokens WHERE user_id = ? AND purpose = 'email_change'").run(input.userId);
        this.insertToken('email_change', emailChange.token, emailChange.token.newEmail);
        this.audit.append(emailChange.event);
      }
      if (fields) {
        const at = input.at.getTime();
        if (fields.changes.name !== undefined) this.sqlite.prepare('UPDATE users SET name = ?, updated_at = ? WHERE id = ?').run(fields.changes.name, at, input.userId);
        if (fields.changes.phone !== undefined) this.sqlite.prepare('UPDATE users SET phone = ?, updated_at = ? WHERE id = ?').run(fields.changes.phone, at, input.userId);
        this.audit.append(fields.event);
      }
      return 'ok';
    });
  }

  async confirmEmailChange(input: { userId: string; tokenHash: string; at: Date; event: AuditEventInput }): Promise<EmailChangeOutcome> {
    // Both refusals roll the transaction back, so the token stays usable by its owner.
    const invalid = Symbol('invalid_token');
    const taken = Symbol('email_taken');
    try {
      return this.database.transaction((): EmailChangeOutcome => {
        const token = this.spendToken('email_change', input.tokenHash, input.at);
        // Someone else's token is as good as none.
        if (!token || token.user_id !== input.userId || token.new_email === null) throw invalid;
        if (this.sqlite.prepare('SELECT 1 FROM users WHERE email = ?').get(token.new_email) !== undefined) throw taken;
        // A restricted account (GDPR Art. 18) stays unchanged.
        const updated = this.sqlite
          .prepare("UPDATE users SET email = ?, updated_at = ? WHERE id = ? AND status = 'active'")
          .run(token.new_email, input.at.getTime(), input.userId);
        if (updated.changes !== 1) throw invalid;
        this.audit.append(input.event);
        return { kind: 'changed', userId: input.userId };
      });
    } catch (error) {
      if (error === invalid) return { kind: 'invalid_token' };
      if (error === taken) return { kind: 'email_taken' };
      throw error;
    }
  }

  async readConsents(userId: string, event: AuditEventInput): Promise<ConsentState> {
    return this.database.transaction(() => {
      const state = currentConsents(this.sqlite, userId);
      this.audit.append(event);
      return state;
    });
  }

  async changeConsents(input: {
    userId: string;
    choices: Partial<Record<ConsentPurpose, boolean>>;
    source: string;
    at: Date;
    newId: () => string;
    event: AuditEventInput;
  }): Promise<{ state: ConsentState; changed: ConsentPurpose[] }> {
    return this.database.transaction(() => {
      const before = currentConsents(this.sqlite, input.userId);
      const insert = this.sqlite.prepare('INSERT INTO consent_history (id, user_id, purpose, granted, source, at) VALUES (?, ?, ?, ?, ?, ?)');
      const changed: ConsentPurpose[] = [];
      for (const [purpose, granted] of Object.entries(input.choices) as [ConsentPurpose, boolean | undefined][]) {
        if (granted === undefined || granted === before[purpose]) continue;
        insert.run(input.newId(), input.userId, purpose, granted ? 1 : 0, input.source, input.at.getTime());
        changed.push(purpose);
      }
      this.audit.append({ ...input.event, data: { ...input.event.data, changed } });
      return { state: currentConsents(this.sqlite, input.userId), changed };
    });
  }

  private insertToken(purpose: TokenPurpose, token: PrivacyTokenRecord, newEmail: string | null): void {
    this.sqlite
      .prepare('INSERT INTO privacy_tokens (id, user_id, purpose, token_hash, new_email, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)')
      .run(token.id, token.userId, purpose, token.tokenHash, newEmail, token.createdAt.getTime(), token.expiresAt.getTime());
  }

  /** Single use: only one request can move `used_at` from NULL, and only before expiry. */
  private spendToken(purpose: TokenPurpose, tokenHash: string, at: Date): { user_id: string; new_email: string | null } | null {
    const now = at.getTime();
    const row = this.sqlite
      .prepare('UPDATE privacy_tokens SET used_at = ? WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ? RETURNING user_id, new_email')
      .get(now, tokenHash, purpose, now) as { user_id: string; new_email: string | null } | undefined;
    return row ?? null;
  }
}
