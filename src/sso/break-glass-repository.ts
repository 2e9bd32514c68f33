import type BetterSqlite3 from 'better-sqlite3';
import type { AuditEventInput } from '../audit/events.js';
import type { SqliteAuditLog } from '../audit/sqlite-audit.js';
import type { SqliteDatabase } from '../platform/db/sqlite.js';

export interface BreakGlassAccount {
  userId: string;
  orgId: string;
  createdBy: string | null;
  createdAt: Date;
}

/** Owners flagged to keep password login while their organization enforces SSO. */
export interface BreakGlassRepository {
  isFlagged(userId: string, orgId: string): Promise<boolean>;
  list(orgId: string): Promise<BreakGlassAccount[]>;
  /** Flag or unflag; false when nothing changed. */
  set(account: BreakGlassAccount, flagged: boolean, event: AuditEventInput): Promise<boolean>;
}

export class SqliteBreakGlassRepository implements BreakGlassRepository {
  private readonly sqlite: BetterSqlite3.Database;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly audit: SqliteAuditLog,
  ) {
    this.sqlite = database.sqlite;
  }

  async isFlagged(userId: string, orgId: string): Promise<boolean> {
    return this.sqlite.prepare('SELECT 1 FROM sso_break_glass WHERE user_id = ? AND org_id = ?').get(userId, orgId) !== undefined;
  }

  async list(orgId: string): Promise<BreakGlassAccount[]> {
    const rows = this.sqlite.prepare('SELECT * FROM sso_break_glass WHERE org_id = ? ORDER BY created_at').all(orgId) as {
      user_id: string;
      org_id: string;
      created_by: string | null;
      created_at: number;
    }[];
    return rows.map((r) => ({ userId: r.user_id, orgId: r.org_id, createdBy: r.created_by, createdAt: new Date(r.created_at) }));
  }

  async set(account: BreakGlassAccount, flagged: boolean, event: AuditEventInput): Promise<boolean> {
    return this.database.transaction(() => {
      const result = flagged
        ? this.sqlite
            .prepare('INSERT INTO sso_break_glass (user_id, org_id, created_by, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO NOTHING')
            .run(account.userId, account.orgId, account.createdBy, account.createdAt.getTime())
        : this.sqlite.prepare('DELETE FROM sso_break_glass WHERE user_id = ? AND org_id = ?').run(account.userId, account.orgId);
      if (result.changes === 0) return false;
      this.audit.append(event);
      return true;
    });
  }
}
