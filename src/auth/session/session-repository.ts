import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteAuditLog } from '../../audit/sqlite-audit.js';
import type { AuditEventInput } from '../../audit/events.js';
import { rawToOrg } from '../../orgs/org.js';
import type { SqliteDatabase } from '../../platform/db/sqlite.js';
import { toUser, type UserRow } from '../../users/user.js';
import type { Aal, AuthMethod, NewSession, Session, SessionContext } from './session.js';

/** Session storage. Async so a PostgreSQL implementation can sit beside this one. */
export interface SessionRepository {
  /** Hot path: one prepared lookup returning session, user and organization. */
  findByTokenHash(tokenHash: string): Promise<SessionContext | null>;
  touch(sessionId: string, at: Date): Promise<void>;
  listForUser(userId: string): Promise<Session[]>;
  /** Delete an expired session (no audit: expiry is not an action). */
  deleteExpired(sessionId: string): Promise<void>;
  /** Revoke one session of `userId`; false when it does not exist or belongs to someone else. */
  revoke(userId: string, sessionId: string, event: AuditEventInput): Promise<boolean>;
  /** Revoke every session of `userId` except `keepSessionId`; returns how many. */
  revokeOthers(userId: string, keepSessionId: string | null, event: AuditEventInput): Promise<number>;
  markReauthenticated(sessionId: string, at: Date, event: AuditEventInput): Promise<void>;
  /** Replace a session by a new one (rotation on AAL change). */
  rotate(oldSessionId: string, next: NewSession, event: AuditEventInput): Promise<void>;
}

interface SessionRow {
  id: string;
  user_id: string;
  token_hash: string;
  aal: number;
  auth_method: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  idle_timeout_ms: number;
  reauthenticated_at: number | null;
  ip: string | null;
  user_agent: string | null;
}

export function rowToSession(row: SessionRow): Session {
  return {
    id: row.id,
    userId: row.user_id,
    aal: row.aal as Aal,
    authMethod: row.auth_method as AuthMethod,
    createdAt: new Date(row.created_at),
    lastSeenAt: new Date(row.last_seen_at),
    expiresAt: new Date(row.expires_at),
    idleTimeoutMs: row.idle_timeout_ms,
    reauthenticatedAt: row.reauthenticated_at === null ? null : new Date(row.reauthenticated_at),
    ip: row.ip,
    userAgent: row.user_agent,
  };
}

/** Insert a minted session; call inside the transaction of the action that issues it. */
export function insertSessionRow(sqlite: BetterSqlite3.Database, next: NewSession): void {
  const s = next.session;
  sqlite
    .prepare(
      `INSERT INTO sessions (id, user_id, token_hash, aal, auth_method, created_at, last_seen_at, expires_at, idle_timeout_ms, reauthenticated_at, ip, user_agent)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(
      s.id, s.userId, next.tokenHash, s.aal, s.authMethod, s.createdAt.getTime(), s.lastSeenAt.getTime(),
      s.expiresAt.getTime(), s.idleTimeoutMs, s.reauthenticatedAt?.getTime() ?? null, s.ip, s.userAgent,
    );
}

export class SqliteSessionRepository implements SessionRepository {
  private readonly byHash: BetterSqlite3.Statement<[string], Record<string, unknown>>;
  private readonly touchStmt: BetterSqlite3.Statement<[number, string]>;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly audit: SqliteAuditLog,
  ) {
    const sqlite = database.sqlite;
    // Prepared once: this is the session check of every authenticated request.
    this.byHash = sqlite.prepare(
      `SELECT s.*,
              u.id AS u_id, u.email AS u_email, u.name AS u_name, u.phone AS u_phone, u.password_hash AS u_password_hash,
              u.org_id AS u_org_id, u.role AS u_role, u.status AS u_status, u.age_confirmed_at AS u_age_confirmed_at,
              u.created_at AS u_created_at, u.updated_at AS u_updated_at,
              o.id AS o_id, o.name AS o_name, o.slug AS o_slug, o.plan AS o_plan, o.settings AS o_settings,
              o.created_at AS o_created_at, o.updated_at AS o_updated_at
         FROM sessions s JOIN users u ON u.id = s.user_id LEFT JOIN orgs o ON o.id = u.org_id
        WHERE s.token_hash = ?`,
    );
    this.touchStmt = sqlite.prepare('UPDATE sessions SET last_seen_at = ? WHERE id = ?');
  }

  async findByTokenHash(tokenHash: string): Promise<SessionContext | null> {
    const r = this.byHash.get(tokenHash);
    if (!r) return null;
    const user: UserRow = {
      id: r.u_id as string,
      email: r.u_email as string,
      name: r.u_name as string,
      phone: r.u_phone as string | null,
      passwordHash: r.u_password_hash as string | null,
      orgId: r.u_org_id as string | null,
      role: r.u_role as string | null,
      status: r.u_status as string,
      ageConfirmedAt: r.u_age_confirmed_at === null ? null : new Date(r.u_age_confirmed_at as number),
      createdAt: new Date(r.u_created_at as number),
      updatedAt: new Date(r.u_updated_at as number),
    };
    const org =
      r.o_id === null
        ? null
        : rawToOrg({
            id: r.o_id as string,
            name: r.o_name as string,
            slug: r.o_slug as string,
            plan: r.o_plan as string,
            settings: r.o_settings as string,
            created_at: r.o_created_at as number,
            updated_at: r.o_updated_at as number,
          });
    return { session: rowToSession(r as unknown as SessionRow), user: toUser(user), org };
  }

  async touch(sessionId: string, at: Date): Promise<void> {
    this.touchStmt.run(at.getTime(), sessionId);
  }

  async listForUser(userId: string): Promise<Session[]> {
    const rows = this.database.sqlite
      .prepare('SELECT * FROM sessions WHERE user_id = ? ORDER BY created_at DESC')
      .all(userId) as SessionRow[];
    return rows.map(rowToSession);
  }

  async deleteExpired(sessionId: string): Promise<void> {
    this.database.sqlite.prepare('DELETE FROM sessions WHERE id = ?').run(sessionId);
  }

  async revoke(userId: string, sessionId: string, event: AuditEventInput): Promise<boolean> {
    return this.database.transaction(() => {
      const result = this.database.sqlite.prepare('DELETE FROM sessions WHERE id = ? AND user_id = ?').run(sessionId, userId);
      if (result.changes === 0) return false;
      this.audit.append(event);
      return true;
    });
  }

  async revokeOthers(userId: string, keepSessionId: string | null, event: AuditEventInput): Promise<number> {
    return this.database.transaction(() => {
      const result = this.database.sqlite
        .prepare('DELETE FROM sessions WHERE user_id = ? AND id IS NOT ?')
        .run(userId, keepSessionId);
      this.audit.append({ ...event, data: { ...event.data, revoked: result.changes } });
      return result.changes;
    });
  }

  async markReauthenticated(sessionId: string, at: Date, event: AuditEventInput): Promise<void> {
    this.database.transaction(() => {
      this.database.sqlite.prepare('UPDATE sessions SET reauthenticated_at = ? WHERE id = ?').run(at.getTime(), sessionId);
      this.audit.append(event);
    });
  }

  async rotate(oldSessionId: string, next: NewSession, event: AuditEventInput): Promise<void> {
    this.database.transaction(() => {
      this.database.sqlite.prepare('DELETE FROM sessions WHERE id = ?').run(oldSessionId);
      insertSessionRow(this.database.sqlite, next);
      this.audit.append(event);
    });
  }
}
