import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';

/**
 * The embedded SQLite database. SQLite-specific code lives only here and in
 * the `*sqlite*` repository files; services see async repository interfaces.
 */
export type Db = BetterSQLite3Database;

export interface SqliteDatabase {
  readonly db: Db;
  readonly sqlite: BetterSqlite3.Database;
  /**
   * Run `fn` in one `BEGIN IMMEDIATE` transaction (the write lock is taken up
   * front, so two processes never deadlock upgrading a read lock). `fn` is
   * synchronous: hash passwords and call IdPs before it.
   */
  transaction<T>(fn: () => T): T;
  ping(): boolean;
  close(): void;
}

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../../drizzle', import.meta.url));

export function openSqlite(file: string): SqliteDatabase {
  mkdirSync(dirname(file), { recursive: true });
  const sqlite = new BetterSqlite3(file);
  // WAL: readers never block the writer. synchronous=NORMAL in WAL mode keeps
  // every committed transaction across a process crash (SIGKILL); see
  // docs/operations.md for the power-loss trade-off.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  // GDPR Art. 17: deleted rows (erasure) are overwritten with zeros, so no
  // personal data survives in free pages or cell gaps of the database file.
  sqlite.pragma('secure_delete = ON');
  const db = drizzle({ client: sqlite });
  return {
    db,
    sqlite,
    transaction: <T>(fn: () => T): T => sqlite.transaction(fn).immediate(),
    ping: () => {
      try {
        return sqlite.prepare('SELECT 1 AS ok').get() !== undefined;
      } catch {
        return false;
      }
    },
    close: () => {
      if (sqlite.open) sqlite.close();
    },
  };
}

/** Apply the committed drizzle-kit migrations (idempotent). */
export function migrateSqlite(database: SqliteDatabase): void {
  migrate(database.db, { migrationsFolder: MIGRATIONS_FOLDER });
}
