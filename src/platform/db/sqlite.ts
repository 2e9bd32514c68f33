import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { CommitStamp, CommitWatch } from './commit-stamp.js';
import { GroupCommit } from './group-commit.js';

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
  /**
   * Like `transaction`, but `fn` shares one COMMIT with the other calls of
   * the same event-loop turn (group commit, `group-commit.ts`). The promise
   * settles after that COMMIT: acknowledge only then. For hot, short writes
   * (the audited authz check).
   */
  groupCommit<T>(fn: () => T): Promise<T>;
  /**
   * Changes whenever a transaction commits, on this connection or any other
   * (`commit-stamp.ts`, `CommitWatch`); null when it cannot be told soundly.
   * Equal stamps ⇒ no commit in between.
   */
  commitStamp(): number | null;
  /**
   * `sql` prepared once per connection and reused (compiling a statement
   * costs 20–60 µs). For statements used in the default mode only: never
   * call `.raw()`, `.pluck()` or `.expand()` on what this returns (the
   * statement is shared); prepare such ones yourself.
   */
  statement(sql: string): BetterSqlite3.Statement;
  /**
   * GDPR Art. 17 after an erasure has committed: copy every WAL frame into
   * the main file (where `secure_delete` has zeroed the erased content) and
   * truncate `-wal` to zero bytes, so no older page image holding the
   * person's data stays in it. One attempt, never waiting for a lock
   * (SECURITY.md "timeouts"): false when another connection (a CLI
   * process) holds a read snapshot or the write lock; try again later.
   */
  checkpointTruncate(): boolean;
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
  // GDPR Art. 17: whenever the WAL restarts after a complete checkpoint, it
  // is truncated to zero bytes instead of being overwritten from the start,
  // so stale frames (older page images) never linger past that point.
  sqlite.pragma('journal_size_limit = 0');
  const db = drizzle({ client: sqlite });
  const group = new GroupCommit(sqlite);
  // A read makes sure the WAL index (the -shm file the stamp reads) exists.
  sqlite.prepare('SELECT count(*) FROM sqlite_master').get();
  const stamp = new CommitStamp(file);
  const watch = new CommitWatch(sqlite, stamp);
  const statements = new Map<string, BetterSqlite3.Statement>();
  return {
    db,
    sqlite,
    transaction: <T>(fn: () => T): T => sqlite.transaction(fn).immediate(),
    groupCommit: <T>(fn: () => T): Promise<T> => group.run(fn),
    commitStamp: () => watch.stamp(),
    statement: (sql: string): BetterSqlite3.Statement => {
      let prepared = statements.get(sql);
      if (prepared === undefined) {
        prepared = sqlite.prepare(sql);
        statements.set(sql, prepared);
      }
      return prepared;
    },
    checkpointTruncate: (): boolean => {
      if (!sqlite.open) return false;
      // TRUNCATE waits on the busy handler for readers to move on; here it must not wait at all.
      const previous = Number(sqlite.pragma('busy_timeout', { simple: true }));
      sqlite.pragma('busy_timeout = 0');
      try {
        const [result] = sqlite.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
        return result !== undefined && result.busy === 0 && result.log === 0;
      } catch {
        return false;
      } finally {
        sqlite.pragma(`busy_timeout = ${previous}`);
      }
    },
    ping: () => {
      try {
        return sqlite.prepare('SELECT 1 AS ok').get() !== undefined;
      } catch {
        return false;
      }
    },
    close: () => {
      stamp.close();
      if (sqlite.open) sqlite.close();
    },
  };
}

/** Apply the committed drizzle-kit migrations (idempotent). */
export function migrateSqlite(database: SqliteDatabase): void {
  migrate(database.db, { migrationsFolder: MIGRATIONS_FOLDER });
}
