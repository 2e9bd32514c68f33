import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteAuditLog } from '../../audit/sqlite-audit.js';
import type { AuditEventInput } from '../../audit/events.js';
import { rawToOrg } from '../../orgs/org.js';
import type { SqliteDatabase } from '../../platform/db/sqlite.js';
import { rawToUser } from '../../users/user-repository.js';
import type { Aal, AuthMethod, NewSession, Session, SessionContext } from './session.js';

/** Session storage. Async so a PostgreSQL implementation can sit beside this one. */
export interface SessionRepository {
  /** Hot path: one prepared lookup returning session, user and organization. */
  findByTokenHash(tokenHash: string): Promise<SessionContext | null>;
  /**
   * What `findByTokenHash` would answer, if it can be answered from memory
   * right now (no I/O); undefined when the database must be asked.
   */
  remembered(tokenHash: string): SessionContext | undefined;
  touch(sessionId: string, at: Date): Promise<void>;
  listForUser(userId: string): Promise<Session[]>;
  /** Delete an expired session (no audit: expiry is not an action). */
  deleteExpired(sessionId: string): Promise<void>;
  /** Revoke one session of `userId`; false when it does not exist or belongs to someone else. */
  revoke(userId: string, sessionId: string, event: AuditEventInput): Promise<boolean>;
  /** Revoke every session of `userId` except `keepSessionId`; returns how many. */
  revokeOthers(userId: string, keepSessionId: string | null, event: AuditEventInput): Promise<number>;
  /**
   * Replace a session by a new one with a new token (rotation on
   * reauthentication, ASVS 7.2.4), in one transaction with `event`. False,
   * and nothing written, when the old session no longer exists (revoked or
   * expired meanwhile): a rotation never brings an ended session back.
   */
  rotate(oldSessionId: string, next: NewSession, event: AuditEventInput): Promise<boolean>;
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
  second_factor_at: number | null;
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
    secondFactorAt: row.second_factor_at === null ? null : new Date(row.second_factor_at),
    ip: row.ip,
    userAgent: row.user_agent,
  };
}

/** Insert a minted session; call inside the transaction of the action that issues it. */
export function insertSessionRow(database: SqliteDatabase, next: NewSession): void {
  const s = next.session;
  database
    .statement(
      `INSERT INTO sessions (id, user_id, token_hash, aal, auth_method, created_at, last_seen_at, expires_at, idle_timeout_ms, reauthenticated_at, second_factor_at, ip, user_agent)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(
      s.id, s.userId, next.tokenHash, s.aal, s.authMethod, s.createdAt.getTime(), s.lastSeenAt.getTime(),
      s.expiresAt.getTime(), s.idleTimeoutMs, s.reauthenticatedAt?.getTime() ?? null, s.secondFactorAt?.getTime() ?? null, s.ip, s.userAgent,
    );
}

/**
 * The hot-path lookup's columns, in order. Performance (issue 9): the
 * statement runs in raw mode (an array per row, read by position) instead of
 * building a 31-key object per request: 14 µs → 8 µs per lookup here.
 */
const LOOKUP_COLUMNS = [
  's.id', 's.user_id', 's.token_hash', 's.aal', 's.auth_method', 's.created_at', 's.last_seen_at', 's.expires_at',
  's.idle_timeout_ms', 's.reauthenticated_at', 's.ip', 's.user_agent',
  'u.id', 'u.email', 'u.name', 'u.phone', 'u.password_hash', 'u.org_id', 'u.role', 'u.status', 'u.age_confirmed_at',
  'u.created_at', 'u.updated_at',
  'o.id', 'o.name', 'o.slug', 'o.plan', 'o.settings', 'o.created_at', 'o.updated_at',
  's.second_factor_at',
] as const;
type LookupRow = unknown[];

export class SqliteSessionRepository implements SessionRepository {
  private readonly byHash: BetterSqlite3.Statement<[string], LookupRow>;
  private readonly touchStmt: BetterSqlite3.Statement<[number, string]>;
  /**
   * Session checks served from memory between two commits (issue 9).
   *
   * Opening an SQLite read transaction costs about 20 µs in the server, as
   * much as a whole bare Fastify request. A lookup remembers its result under
   * the database's commit stamp read *before* the query (`commitStamp()`,
   * platform/db/commit-stamp.ts: this connection's change counter and the
   * WAL-index header that every commit by any connection or process
   * rewrites); the next check reads the stamp again and uses the remembered
   * result only if the stamp is unchanged, i.e. no transaction has committed
   * since, so SQLite would answer the very same row. Any commit (a logout, a
   * revocation, a role or plan change, an erasure, the lastSeenAt touch, any
   * audit event) empties the cache for the next request; one by another
   * process (the CLI) for the next event-loop turn. Expiry and idle time are still checked against
   * the clock on every request (session-service.ts). Unknown tokens are never
   * remembered. Results are frozen: requests share them.
   */
  private cache = new Map<string, SessionContext>();
  private cacheStamp: number | null = null;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly audit: SqliteAuditLog,
    /** At most this many sessions are remembered between two commits; 0 turns the cache off. */
    private readonly cacheLimit = 10_000,
  ) {
    const sqlite = database.sqlite;
    // Prepared once: this is the session check of every authenticated request.
    this.byHash = sqlite
      .prepare<[string], LookupRow>(
        `SELECT ${LOOKUP_COLUMNS.join(', ')}
           FROM sessions s JOIN users u ON u.id = s.user_id LEFT JOIN orgs o ON o.id = u.org_id
          WHERE s.token_hash = ?`,
      )
      .raw(true);
    this.touchStmt = sqlite.prepare('UPDATE sessions SET last_seen_at = ? WHERE id = ?');
  }

  async findByTokenHash(tokenHash: string): Promise<SessionContext | null> {
    if (this.cacheLimit === 0) return this.lookup(tokenHash);
    const stamp = this.database.commitStamp();
    if (stamp === null || stamp !== this.cacheStamp) {
      if (this.cache.size > 0) this.cache = new Map();
      this.cacheStamp = stamp;
    } else {
      const remembered = this.cache.get(tokenHash);
      if (remembered) return remembered;
    }
    const found = this.lookup(tokenHash);
    if (found && stamp !== null) {
      if (this.cache.size >= this.cacheLimit) this.cache = new Map();
      this.cache.set(tokenHash, found);
    }
    return found;
  }

  remembered(tokenHash: string): SessionContext | undefined {
    if (this.cacheLimit === 0 || this.cache.size === 0) return undefined;
    const stamp = this.database.commitStamp();
    // Same rule as findByTokenHash: only while no transaction has committed since it was read.
    if (stamp === null || stamp !== this.cacheStamp) return undefined;
    return this.cache.get(tokenHash);
  }

  private lookup(tokenHash: string): SessionContext | null {
    const r = this.byHash.get(tokenHash);
    if (!r) return null;
    // Each part read by position into its row shape, then converted by the
    // same function as other queries' rows (rowToSession, rawToUser, rawToOrg).
    const session = rowToSession({
      id: r[0] as string,
      user_id: r[1] as string,
      token_hash: r[2] as string,
      aal: r[3] as number,
      auth_method: r[4] as string,
      created_at: r[5] as number,
      last_seen_at: r[6] as number,
      expires_at: r[7] as number,
      idle_timeout_ms: r[8] as number,
      reauthenticated_at: r[9] as number | null,
      second_factor_at: r[30] as number | null,
      ip: r[10] as string | null,
      user_agent: r[11] as string | null,
    });
    const user = rawToUser({
      id: r[12] as string,
      email: r[13] as string,
      name: r[14] as string,
      phone: r[15] as string | null,
      password_hash: r[16] as string | null,
      org_id: r[17] as string | null,
      role: r[18] as string | null,
      status: r[19] as string,
      age_confirmed_at: r[20] as number | null,
      created_at: r[21] as number,
      updated_at: r[22] as number,
    });
    const org =
      r[23] === null
        ? null
        : rawToOrg({
            id: r[23] as string,
            name: r[24] as string,
            slug: r[25] as string,
            plan: r[26] as string,
            settings: r[27] as string,
            created_at: r[28] as number,
            updated_at: r[29] as number,
          });
    return deepFreeze({ session, user, org });
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

  async rotate(oldSessionId: string, next: NewSession, event: AuditEventInput): Promise<boolean> {
    return this.database.transaction(() => {
      // The old token ends here; only if it still existed does the new one start.
      const ended = this.database.sqlite.prepare('DELETE FROM sessions WHERE id = ?').run(oldSessionId);
      if (ended.changes !== 1) return false;
      insertSessionRow(this.database, next);
      this.audit.append(event);
      return true;
    });
  }
}

/** Freeze a looked-up context (and its nested objects) before requests share it. */
function deepFreeze<T extends SessionContext>(context: T): T {
  Object.freeze(context.session);
  Object.freeze(context.user);
  if (context.org) {
    Object.freeze(context.org.settings);
    Object.freeze(context.org);
  }
  return Object.freeze(context);
}
