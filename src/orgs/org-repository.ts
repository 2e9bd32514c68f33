import type BetterSqlite3 from 'better-sqlite3';
import type { AuditEventInput } from '../audit/events.js';
import type { SqliteAuditLog } from '../audit/sqlite-audit.js';
import { insertSessionRow } from '../auth/session/session-repository.js';
import type { NewSession } from '../auth/session/session.js';
import type { Plan } from '../plans/plans.js';
import type { SqliteDatabase } from '../platform/db/sqlite.js';
import { insertUserRow, type NewUserRow } from '../users/user-repository.js';
import type { OrgRole } from '../users/user.js';
import { rawToOrg, type Org, type OrgSettings, type RawOrgRow } from './org.js';

export interface NewOrg {
  id: string;
  name: string;
  slug: string;
  plan: Plan;
  createdAt: Date;
}

export interface InvitationRecord {
  id: string;
  orgId: string;
  email: string;
  role: OrgRole;
  tokenHash: string;
  invitedBy: string | null;
  expiresAt: Date;
  createdAt: Date;
}

export type CreateOutcome = { kind: 'created' } | { kind: 'email_taken' };
export type AcceptOutcome =
  | { kind: 'accepted'; orgId: string }
  | { kind: 'invalid_token' }
  | { kind: 'email_taken' };

/** Organizations, memberships and invitations. Each write is one transaction with its audit events. */
export interface OrgRepository {
  byId(orgId: string): Promise<Org | null>;
  /** Organization + owner (+ session when given), e.g. sign-up; `email_taken` writes nothing. */
  createWithOwner(input: {
    org: NewOrg;
    owner: NewUserRow;
    session: NewSession | null;
    events: (orgId: string) => AuditEventInput[];
  }): Promise<CreateOutcome>;
  update(orgId: string, changes: { name?: string; settings?: OrgSettings }, at: Date, event: AuditEventInput): Promise<void>;
  setPlan(orgId: string, plan: Plan, at: Date, event: AuditEventInput): Promise<void>;
  /** Change a member's role unless that would leave the org without an owner. */
  changeRole(orgId: string, userId: string, role: OrgRole, at: Date, event: AuditEventInput): Promise<'ok' | 'last_owner'>;
  createInvitation(invitation: InvitationRecord, event: AuditEventInput): Promise<void>;
  /** Consume an invitation atomically and create the member and their session. */
  acceptInvitation(input: {
    tokenHash: string;
    now: Date;
    user: Omit<NewUserRow, 'email' | 'orgId' | 'role'>;
    session: NewSession;
    events: (orgId: string, email: string) => AuditEventInput[];
  }): Promise<AcceptOutcome>;
  slugTaken(slug: string): Promise<boolean>;
  /** A pending, unexpired invitation's email and organization (read only; acceptance still consumes atomically). */
  pendingInvitation(tokenHash: string, now: Date): Promise<{ email: string; orgId: string } | null>;
  /** Invitations not yet accepted and not expired, newest first (the admin page lists them). */
  pendingInvitations(orgId: string, now: Date): Promise<PendingInvitation[]>;
}

export interface PendingInvitation {
  id: string;
  email: string;
  role: OrgRole;
  expiresAt: Date;
  createdAt: Date;
}

export class SqliteOrgRepository implements OrgRepository {
  private readonly sqlite: BetterSqlite3.Database;
  private readonly byIdStmt: BetterSqlite3.Statement<[string], RawOrgRow>;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly audit: SqliteAuditLog,
  ) {
    this.sqlite = database.sqlite;
    this.byIdStmt = this.sqlite.prepare('SELECT * FROM orgs WHERE id = ?');
  }

  async byId(orgId: string): Promise<Org | null> {
    const row = this.byIdStmt.get(orgId);
    return row ? rawToOrg(row) : null;
  }

  async slugTaken(slug: string): Promise<boolean> {
    return this.sqlite.prepare('SELECT 1 FROM orgs WHERE slug = ?').get(slug) !== undefined;
  }

  async pendingInvitation(tokenHash: string, now: Date): Promise<{ email: string; orgId: string } | null> {
    const row = this.sqlite
      .prepare('SELECT email, org_id FROM invitations WHERE token_hash = ? AND accepted_at IS NULL AND expires_at > ?')
      .get(tokenHash, now.getTime()) as { email: string; org_id: string } | undefined;
    return row ? { email: row.email, orgId: row.org_id } : null;
  }

  async pendingInvitations(orgId: string, now: Date): Promise<PendingInvitation[]> {
    const rows = this.sqlite
      .prepare('SELECT id, email, role, expires_at, created_at FROM invitations WHERE org_id = ? AND accepted_at IS NULL AND expires_at > ? ORDER BY created_at DESC LIMIT 500')
      .all(orgId, now.getTime()) as { id: string; email: string; role: string; expires_at: number; created_at: number }[];
    return rows.map((r) => ({ id: r.id, email: r.email, role: r.role as OrgRole, expiresAt: new Date(r.expires_at), createdAt: new Date(r.created_at) }));
  }

  async createWithOwner(input: {
    org: NewOrg;
    owner: NewUserRow;
    session: NewSession | null;
    events: (orgId: string) => AuditEventInput[];
  }): Promise<CreateOutcome> {
    const email_taken = Symbol('email_taken');
    try {
      return this.database.transaction(() => {
        const { org } = input;
        this.sqlite
          .prepare('INSERT INTO orgs (id, name, slug, plan, settings, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
          .run(org.id, org.name, org.slug, org.plan, '{}', org.createdAt.getTime(), org.createdAt.getTime());
        // Roll the organization back too when the email is taken.
        if (!insertUserRow(this.sqlite, input.owner)) throw email_taken;
        if (input.session) insertSessionRow(this.database, input.session);
        for (const event of input.events(org.id)) this.audit.append(event);
        return { kind: 'created' } as const;
      });
    } catch (error) {
      if (error === email_taken) return { kind: 'email_taken' };
      throw error;
    }
  }

  async update(orgId: string, changes: { name?: string; settings?: OrgSettings }, at: Date, event: AuditEventInput): Promise<void> {
    this.database.transaction(() => {
      if (changes.name !== undefined) this.sqlite.prepare('UPDATE orgs SET name = ?, updated_at = ? WHERE id = ?').run(changes.name, at.getTime(), orgId);
      if (changes.settings !== undefined) {
        this.sqlite.prepare('UPDATE orgs SET settings = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(changes.settings), at.getTime(), orgId);
      }
      this.audit.append(event);
    });
  }

  async setPlan(orgId: string, plan: Plan, at: Date, event: AuditEventInput): Promise<void> {
    this.database.transaction(() => {
      this.sqlite.prepare('UPDATE orgs SET plan = ?, updated_at = ? WHERE id = ?').run(plan, at.getTime(), orgId);
      this.audit.append(event);
    });
  }

  private otherOwners(orgId: string, userId: string): number {
    return (this.sqlite.prepare("SELECT COUNT(*) AS n FROM users WHERE org_id = ? AND role = 'owner' AND id != ?").get(orgId, userId) as { n: number }).n;
  }

  async changeRole(orgId: string, userId: string, role: OrgRole, at: Date, event: AuditEventInput): Promise<'ok' | 'last_owner'> {
    return this.database.transaction(() => {
      const current = this.sqlite.prepare('SELECT role FROM users WHERE id = ? AND org_id = ?').get(userId, orgId) as { role: string } | undefined;
      if (current?.role === 'owner' && role !== 'owner' && this.otherOwners(orgId, userId) === 0) return 'last_owner';
      this.sqlite.prepare('UPDATE users SET role = ?, updated_at = ? WHERE id = ? AND org_id = ?').run(role, at.getTime(), userId, orgId);
      this.audit.append(event);
      return 'ok';
    });
  }

  async createInvitation(invitation: InvitationRecord, event: AuditEventInput): Promise<void> {
    this.database.transaction(() => {
      this.sqlite
        .prepare(
          'INSERT INTO invitations (id, org_id, email, role, token_hash, invited_by, expires_at, accepted_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)',
        )
        .run(
          invitation.id, invitation.orgId, invitation.email, invitation.role, invitation.tokenHash,
          invitation.invitedBy, invitation.expiresAt.getTime(), invitation.createdAt.getTime(),
        );
      this.audit.append(event);
    });
  }

  async acceptInvitation(input: {
    tokenHash: string;
    now: Date;
    user: Omit<NewUserRow, 'email' | 'orgId' | 'role'>;
    session: NewSession;
    events: (orgId: string, email: string) => AuditEventInput[];
  }): Promise<AcceptOutcome> {
    const email_taken = Symbol('email_taken');
    try {
      return this.database.transaction((): AcceptOutcome => {
        const now = input.now.getTime();
        const invitation = this.sqlite
          .prepare('UPDATE invitations SET accepted_at = ? WHERE token_hash = ? AND accepted_at IS NULL AND expires_at > ? RETURNING org_id, email, role')
          .get(now, input.tokenHash, now) as { org_id: string; email: string; role: string } | undefined;
        if (!invitation) return { kind: 'invalid_token' };
        const created = insertUserRow(this.sqlite, { ...input.user, email: invitation.email, orgId: invitation.org_id, role: invitation.role });
        // Roll back the consumed invitation too: it stays usable.
        if (!created) throw email_taken;
        insertSessionRow(this.database, input.session);
        for (const event of input.events(invitation.org_id, invitation.email)) this.audit.append(event);
        return { kind: 'accepted', orgId: invitation.org_id };
      });
    } catch (error) {
      if (error === email_taken) return { kind: 'email_taken' };
      throw error;
    }
  }
}
