import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase } from '../../platform/db/sqlite.js';

/** Assertion ids already used (the `saml_seen_assertions` table). */
export interface AssertionReplayCache {
  /**
   * Record that `assertionId` was used on `connectionId` until `expiresAt`.
   * `replayed` when it had been used before — exactly one of several
   * concurrent callers gets `fresh` (the primary key decides).
   */
  remember(connectionId: string, assertionId: string, expiresAt: Date, now: Date): Promise<'fresh' | 'replayed'>;
}

export class SqliteAssertionReplayCache implements AssertionReplayCache {
  private readonly sqlite: BetterSqlite3.Database;

  constructor(private readonly database: SqliteDatabase) {
    this.sqlite = database.sqlite;
  }

  async remember(connectionId: string, assertionId: string, expiresAt: Date, now: Date): Promise<'fresh' | 'replayed'> {
    return this.database.transaction(() => {
      this.sqlite.prepare('DELETE FROM saml_seen_assertions WHERE expires_at < ?').run(now.getTime());
      const inserted = this.sqlite
        .prepare('INSERT INTO saml_seen_assertions (connection_id, assertion_id, seen_at, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING')
        .run(connectionId, assertionId, now.getTime(), expiresAt.getTime());
      return inserted.changes === 1 ? 'fresh' : 'replayed';
    });
  }
}
