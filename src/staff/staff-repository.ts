import type BetterSqlite3 from 'better-sqlite3';
import { decide, PENDING_REQUEST_TTL_MS, type AccessScope, type Decision } from '../access/decide.js';
import type { AuditEventInput } from '../audit/events.js';
import type { SqliteAuditLog } from '../audit/sqlite-audit.js';
import { rawToOrg, type Org, type RawOrgRow } from '../orgs/org.js';
import type { SqliteDatabase } from '../platform/db/sqlite.js';
import { insertUserRow, rawToUser, type NewUserRow } from '../users/user-repository.js';
import type { User } from '../users/user.js';
import { toAccessRequest, type AccessRequest, type AccessRequestRow, type StaffMember, type StaffRole } from './staff.js';

export interface NewAccessRequest {
  id: string;
  staffId: string;
  orgId: string;
  scope: AccessScope;
  reason: string;
  ticket: string | null;
  durationMinutes: number;
  customerApproval: 'not_required' | 'pending';
  requestedAt: Date;
}

export interface RequestFilter {
  staffId?: string;
  orgId?: string;
  status?: string;
  limit: number;
}

/** What a guarded access returns: the decision and, when allowed, the data read or written. */
export type Guarded<T> = { decision: Decision; value: T | null };

/** Which event to record for a decision (allowed or denied), built by the service. */
export type DecisionEvent = (decision: Decision) => AuditEventInput;

/**
 * Staff principals, access requests and grants, and every guarded access.
 * Each guarded access decides, records its audit event and reads or writes
 * in ONE transaction: if the event cannot be written, nothing is answered
 * (fail closed, ASVS 16.5).
 */
export interface StaffRepository {
  staffMember(userId: string): Promise<StaffMember | null>;
  createStaff(user: NewUserRow, staff: { role: StaffRole; ndaSignedAt: string | null }, event: AuditEventInput): Promise<boolean>;
  createRequest(request: NewAccessRequest, event: AuditEventInput): Promise<void>;
  request(id: string): Promise<AccessRequest | null>;
  listRequests(filter: RequestFilter): Promise<AccessRequest[]>;
  /** security_admin decision; false when no longer pending (decided, or lapsed after 24 h). */
  decide(input: { id: string; by: string; at: Date; approve: boolean; comment: string | null; event: AuditEventInput }): Promise<AccessRequest | null>;
  /** Customer decision; false when not awaiting the customer. */
  customerDecide(input: { id: string; orgId: string; by: string; at: Date; approve: boolean; event: AuditEventInput }): Promise<AccessRequest | null>;
  revoke(input: { id: string; by: string; at: Date; event: AuditEventInput }): Promise<boolean>;
  /** Mark lapsed requests and ended grants `expired`, one audit event each. */
  expireDue(now: Date, event: (request: AccessRequest, kind: 'request' | 'grant') => AuditEventInput): Promise<number>;

  readOrg(staffId: string, orgId: string, now: Date, event: DecisionEvent): Promise<Guarded<Org>>;
  readMembers(staffId: string, orgId: string, now: Date, event: DecisionEvent): Promise<Guarded<User[]>>;
  readMember(staffId: string, orgId: string, userId: string, now: Date, event: DecisionEvent): Promise<Guarded<User>>;
  revokeMemberSessions(staffId: string, orgId: string, userId: string, now: Date, event: DecisionEvent): Promise<Guarded<number>>;
  /** Grants active at `now` (for the metrics gauge). */
  countActive(now: Date): Promise<number>;
  /** The authz decision API: decide and record, nothing else. */
  check(staffId: string, orgId: string, action: AccessScope, now: Date, event: DecisionEvent): Promise<Decision>;
}

export class SqliteStaffRepository implements StaffRepository {
  private readonly sqlite: BetterSqlite3.Database;
  private readonly staffStmt: BetterSqlite3.Statement<[string], { user_id: string; role: string; nda_signed_at: string | null }>;
  private readonly grantsStmt: BetterSqlite3.Statement<[string, string], AccessRequestRow>;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly audit: SqliteAuditLog,
  ) {
    this.sqlite = database.sqlite;
    this.staffStmt = this.sqlite.prepare('SELECT user_id, role, nda_signed_at FROM staff_members WHERE user_id = ?');
    // Prepared once: the decision path of every staff access and authz check.
    this.grantsStmt = this.sqlite.prepare("SELECT * FROM access_requests WHERE staff_id = ? AND org_id = ? AND status = 'approved'");
  }

  private member(userId: string): StaffMember | null {
    const row = this.staffStmt.get(userId);
    return row ? { userId: row.user_id, role: row.role as StaffRole, ndaSignedAt: row.nda_signed_at } : null;
  }

  async staffMember(userId: string): Promise<StaffMember | null> {
    return this.member(userId);
  }

  async createStaff(user: NewUserRow, staff: { role: StaffRole; ndaSignedAt: string | null }, event: AuditEventInput): Promise<boolean> {
    const taken = Symbol('taken');
    try {
      return this.database.transaction(() => {
        if (!insertUserRow(this.sqlite, user)) throw taken;
        this.sqlite
          .prepare('INSERT INTO staff_members (user_id, role, nda_signed_at, created_at) VALUES (?, ?, ?, ?)')
          .run(user.id, staff.role, staff.ndaSignedAt, user.createdAt.getTime());
        this.audit.append(event);
        return true;
      });
    } catch (error) {
      if (error === taken) return false;
      throw error;
    }
  }

  async createRequest(r: NewAccessRequest, event: AuditEventInput): Promise<void> {
    this.database.transaction(() => {
      this.sqlite
        .prepare(
          `INSERT INTO access_requests (id, staff_id, org_id, scope, reason, ticket, duration_minutes, status, customer_approval, requested_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)`,
        )
        .run(r.id, r.staffId, r.orgId, r.scope, r.reason, r.ticket, r.durationMinutes, r.customerApproval, r.requestedAt.getTime());
      this.audit.append(event);
    });
  }

  private requestRow(id: string): AccessRequest | null {
    const row = this.sqlite.prepare('SELECT * FROM access_requests WHERE id = ?').get(id) as AccessRequestRow | undefined;
    return row ? toAccessRequest(row) : null;
  }

  async request(id: string): Promise<AccessRequest | null> {
    return this.requestRow(id);
  }

  async listRequests(filter: RequestFilter): Promise<AccessRequest[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.staffId) { where.push('staff_id = ?'); args.push(filter.staffId); }
    if (filter.orgId) { where.push('org_id = ?'); args.push(filter.orgId); }
    const sql = `SELECT * FROM access_requests ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY requested_at DESC, id DESC LIMIT ?`;
    const rows = this.sqlite.prepare(sql).all(...args, filter.limit) as AccessRequestRow[];
    return rows.map(toAccessRequest);
  }

  /** Starts the grant clock when the last required approval arrives. */
  private activateIfReady(id: string, at: Date): void {
    this.sqlite
      .prepare(
        `UPDATE access_requests SET starts_at = ?, expires_at = ? + duration_minutes * 60000
          WHERE id = ? AND status = 'approved' AND customer_approval IN ('not_required', 'approved') AND starts_at IS NULL`,
      )
      .run(at.getTime(), at.getTime(), id);
  }

  async decide(input: { id: string; by: string; at: Date; approve: boolean; comment: string | null; event: AuditEventInput }): Promise<AccessRequest | null> {
    return this.database.transaction(() => {
      const at = input.at.getTime();
      // Only a pending, unlapsed request can be decided, and only once.
      const changed = this.sqlite
        .prepare(
          `UPDATE access_requests SET status = ?, decided_by = ?, decided_at = ?, decision_comment = ?
            WHERE id = ? AND status = 'pending' AND requested_at > ?`,
        )
        .run(input.approve ? 'approved' : 'denied', input.by, at, input.comment, input.id, at - PENDING_REQUEST_TTL_MS);
      if (changed.changes !== 1) return null;
      if (input.approve) this.activateIfReady(input.id, input.at);
      this.audit.append(input.event);
      return this.requestRow(input.id);
    });
  }

  async customerDecide(input: { id: string; orgId: string; by: string; at: Date; approve: boolean; event: AuditEventInput }): Promise<AccessRequest | null> {
    return this.database.transaction(() => {
      const at = input.at.getTime();
      const changed = this.sqlite
        .prepare(
          `UPDATE access_requests SET customer_approval = ?, customer_decided_by = ?, customer_decided_at = ?
            WHERE id = ? AND org_id = ? AND customer_approval = 'pending' AND status IN ('pending', 'approved') AND requested_at > ?`,
        )
        .run(input.approve ? 'approved' : 'denied', input.by, at, input.id, input.orgId, at - PENDING_REQUEST_TTL_MS);
      if (changed.changes !== 1) return null;
      if (input.approve) this.activateIfReady(input.id, input.at);
      this.audit.append(input.event);
      return this.requestRow(input.id);
    });
  }

  async revoke(input: { id: string; by: string; at: Date; event: AuditEventInput }): Promise<boolean> {
    return this.database.transaction(() => {
      const changed = this.sqlite
        .prepare("UPDATE access_requests SET status = 'revoked', revoked_by = ?, revoked_at = ? WHERE id = ? AND status IN ('pending', 'approved')")
        .run(input.by, input.at.getTime(), input.id);
      if (changed.changes !== 1) return false;
      this.audit.append(input.event);
      return true;
    });
  }

  async expireDue(now: Date, event: (request: AccessRequest, kind: 'request' | 'grant') => AuditEventInput): Promise<number> {
    return this.database.transaction(() => {
      const at = now.getTime();
      const grants = this.sqlite
        .prepare("SELECT * FROM access_requests WHERE status = 'approved' AND expires_at IS NOT NULL AND expires_at <= ?")
        .all(at) as AccessRequestRow[];
      const lapsed = this.sqlite
        .prepare(
          `SELECT * FROM access_requests WHERE requested_at <= ? AND (status = 'pending' OR (status = 'approved' AND starts_at IS NULL AND customer_approval = 'pending'))`,
        )
        .all(at - PENDING_REQUEST_TTL_MS) as AccessRequestRow[];
      const mark = this.sqlite.prepare("UPDATE access_requests SET status = 'expired' WHERE id = ?");
      for (const [rows, kind] of [[grants, 'grant'], [lapsed, 'request']] as const) {
        for (const row of rows) {
          mark.run(row.id);
          this.audit.append(event(toAccessRequest(row), kind));
        }
      }
      return grants.length + lapsed.length;
    });
  }

  /** Decide, record the event, and only when allowed run `work` — one transaction. */
  private guarded<T>(staffId: string, orgId: string, action: AccessScope, now: Date, event: DecisionEvent, work: () => T | null): Guarded<T> {
    return this.database.transaction(() => {
      const decision = decide({
        staff: this.member(staffId),
        grants: this.grantsStmt.all(staffId, orgId).map(toAccessRequest),
        action,
        now,
      });
      this.audit.append(event(decision));
      return { decision, value: decision.allow ? work() : null };
    });
  }

  async readOrg(staffId: string, orgId: string, now: Date, event: DecisionEvent): Promise<Guarded<Org>> {
    return this.guarded(staffId, orgId, 'read', now, event, () => {
      const row = this.sqlite.prepare('SELECT * FROM orgs WHERE id = ?').get(orgId) as RawOrgRow | undefined;
      return row ? rawToOrg(row) : null;
    });
  }

  async readMembers(staffId: string, orgId: string, now: Date, event: DecisionEvent): Promise<Guarded<User[]>> {
    return this.guarded(staffId, orgId, 'read', now, event, () =>
      // GDPR Art. 18: restricted members are hidden from staff.
      (this.sqlite.prepare("SELECT * FROM users WHERE org_id = ? AND status != 'restricted' ORDER BY created_at, id").all(orgId) as Parameters<typeof rawToUser>[0][]).map(rawToUser),
    );
  }

  async readMember(staffId: string, orgId: string, userId: string, now: Date, event: DecisionEvent): Promise<Guarded<User>> {
    return this.guarded(staffId, orgId, 'read', now, event, () => {
      const row = this.sqlite.prepare("SELECT * FROM users WHERE id = ? AND org_id = ? AND status != 'restricted'").get(userId, orgId) as
        | Parameters<typeof rawToUser>[0]
        | undefined;
      return row ? rawToUser(row) : null;
    });
  }

  async revokeMemberSessions(staffId: string, orgId: string, userId: string, now: Date, event: DecisionEvent): Promise<Guarded<number>> {
    return this.guarded(staffId, orgId, 'write', now, event, () => {
      const member = this.sqlite.prepare("SELECT 1 FROM users WHERE id = ? AND org_id = ? AND status != 'restricted'").get(userId, orgId);
      if (!member) return null;
      return this.sqlite.prepare('DELETE FROM sessions WHERE user_id = ?').run(userId).changes;
    });
  }

  async countActive(now: Date): Promise<number> {
    const at = now.getTime();
    const row = this.sqlite
      .prepare(
        `SELECT COUNT(*) AS n FROM access_requests WHERE status = 'approved' AND customer_approval IN ('not_required', 'approved')
           AND starts_at <= ? AND expires_at > ?`,
      )
      .get(at, at) as { n: number };
    return row.n;
  }

  async check(staffId: string, orgId: string, action: AccessScope, now: Date, event: DecisionEvent): Promise<Decision> {
    // Group commit (issue 9): checks arriving together share one COMMIT; each
    // still decides and records in its own savepoint, and is answered only
    // after the COMMIT holding its event (durable across a SIGKILL).
    const result = await this.database.groupCommit(() => this.guarded(staffId, orgId, action, now, event, () => null));
    return result.decision;
  }
}
