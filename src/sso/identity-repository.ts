import type BetterSqlite3 from 'better-sqlite3';
import type { AuditEventInput } from '../audit/events.js';
import type { SqliteAuditLog } from '../audit/sqlite-audit.js';
import { insertSessionRow } from '../auth/session/session-repository.js';
import type { NewSession } from '../auth/session/session.js';
import type { SqliteDatabase } from '../platform/db/sqlite.js';
import { insertUserRow, rawToUser, type NewUserRow } from '../users/user-repository.js';
import type { User } from '../users/user.js';

export interface SsoIdentity {
  id: string;
  connectionId: string;
  subject: string;
  userId: string;
  email: string | null;
  createdAt: Date;
  lastLoginAt: Date | null;
}

export interface NewIdentity {
  id: string;
  connectionId: string;
  subject: string;
  userId: string;
  email: string | null;
  createdAt: Date;
}

/** What a login writes, decided by the linking rules ({@link ../linking.ts}). */
export type LoginWrite =
  | { kind: 'existing'; identityId: string }
  | { kind: 'link'; identity: NewIdentity }
  | { kind: 'provision'; user: NewUserRow; identity: NewIdentity };

/** SSO identities and the writes of an SSO login. */
export interface SsoIdentityRepository {
  /** The identity (connection, subject) and its user. */
  find(connectionId: string, subject: string): Promise<{ identity: SsoIdentity; user: User } | null>;
  /** Whether `userId` already has an identity on `connectionId` (under another subject). */
  hasIdentityOn(connectionId: string, userId: string): Promise<boolean>;
  /**
   * One transaction: provision and/or link as decided, issue the session,
   * append the events. `conflict` when a concurrent login took the email or
   * the (connection, subject) first — nothing is written then.
   */
  completeLogin(input: { write: LoginWrite; session: NewSession; at: Date; events: AuditEventInput[] }): Promise<'ok' | 'conflict'>;
  /** Audit a refused login (its own transaction). */
  recordFailure(event: AuditEventInput): Promise<void>;
  /** Audit a non-login SSO decision (e.g. break-glass use). */
  record(event: AuditEventInput): Promise<void>;
}

interface IdentityRow {
  id: string;
  connection_id: string;
  subject: string;
  user_id: string;
  email: string | null;
  created_at: number;
  last_login_at: number | null;
}

export class SqliteSsoIdentityRepository implements SsoIdentityRepository {
  private readonly sqlite: BetterSqlite3.Database;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly audit: SqliteAuditLog,
  ) {
    this.sqlite = database.sqlite;
  }

  async find(connectionId: string, subject: string): Promise<{ identity: SsoIdentity; user: User } | null> {
    const row = this.sqlite.prepare('SELECT * FROM sso_identities WHERE connection_id = ? AND subject = ?').get(connectionId, subject) as IdentityRow | undefined;
    if (!row) return null;
    const user = this.sqlite.prepare('SELECT * FROM users WHERE id = ?').get(row.user_id) as Parameters<typeof rawToUser>[0] | undefined;
    if (!user) return null;
    return {
      identity: {
        id: row.id,
        connectionId: row.connection_id,
        subject: row.subject,
        userId: row.user_id,
        email: row.email,
        createdAt: new Date(row.created_at),
        lastLoginAt: row.last_login_at === null ? null : new Date(row.last_login_at),
      },
      user: rawToUser(user),
    };
  }

  async hasIdentityOn(connectionId: string, userId: string): Promise<boolean> {
    return this.sqlite.prepare('SELECT 1 FROM sso_identities WHERE connection_id = ? AND user_id = ?').get(connectionId, userId) !== undefined;
  }

  async completeLogin(input: { write: LoginWrite; session: NewSession; at: Date; events: AuditEventInput[] }): Promise<'ok' | 'conflict'> {
    const conflict = Symbol('conflict');
    const insertIdentity = (identity: NewIdentity): void => {
      const inserted = this.sqlite
        .prepare(
          `INSERT INTO sso_identities (id, connection_id, subject, user_id, email, created_at, last_login_at)
           VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (connection_id, subject) DO NOTHING`,
        )
        .run(identity.id, identity.connectionId, identity.subject, identity.userId, identity.email, identity.createdAt.getTime(), input.at.getTime());
      if (inserted.changes !== 1) throw conflict;
    };
    try {
      return this.database.transaction(() => {
        const { write } = input;
        if (write.kind === 'existing') {
          this.sqlite.prepare('UPDATE sso_identities SET last_login_at = ? WHERE id = ?').run(input.at.getTime(), write.identityId);
        } else {
          if (write.kind === 'provision' && !insertUserRow(this.sqlite, write.user)) throw conflict;
          insertIdentity(write.identity);
        }
        insertSessionRow(this.database, input.session);
        for (const event of input.events) this.audit.append(event);
        return 'ok' as const;
      });
    } catch (error) {
      if (error === conflict) return 'conflict';
      throw error;
    }
  }

  async recordFailure(event: AuditEventInput): Promise<void> {
    this.database.transaction(() => {
      this.audit.append(event);
    });
  }

  async record(event: AuditEventInput): Promise<void> {
    this.database.transaction(() => {
      this.audit.append(event);
    });
  }
}
