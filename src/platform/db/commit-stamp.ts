import { closeSync, openSync, readSync } from 'node:fs';
import type BetterSqlite3 from 'better-sqlite3';

/** Bytes of one copy of the WAL-index header (https://www.sqlite.org/walformat.html, "The WAL-Index Header"). */
const HEADER_BYTES = 48;
/** Offset of `isInit` in the header: 1 once the wal-index is initialised. */
const IS_INIT = 12;

/**
 * A stamp that changes whenever any connection, in any process, commits a
 * transaction to a WAL-mode SQLite database: the WAL-index header in the
 * `-shm` file. SQLite rewrites it on every commit (`iChange`, `mxFrame`, the
 * frame checksums) and on every WAL restart (the salts); readers use it to
 * find the newest snapshot, so while it is unchanged a new read transaction
 * would see exactly the data an earlier one saw.
 *
 * Performance (issue 9): reading these 96 bytes is one `pread` (1 µs in a
 * loop, 4–6 µs in a busy server), while opening an SQLite read transaction
 * in the server costs about 20 µs (a SHARED lock via fcntl, an fstat, the
 * WAL-index, then the unlock). `CommitWatch` below reads it once per
 * event-loop turn.
 *
 * Returns null when no sound stamp can be read (no `-shm` file, e.g. an
 * in-memory database; the header's two copies differ because a writer is
 * updating it; not initialised): callers then read from SQLite.
 */
export class CommitStamp {
  private fd: number | null = null;
  private failed = false;
  private readonly buffer = Buffer.alloc(2 * HEADER_BYTES);

  constructor(private readonly databaseFile: string) {}

  read(): string | null {
    if (this.failed) return null;
    if (this.fd === null) {
      try {
        this.fd = openSync(`${this.databaseFile}-shm`, 'r');
      } catch {
        this.failed = true;
        return null;
      }
    }
    let bytes: number;
    try {
      bytes = readSync(this.fd, this.buffer, 0, this.buffer.length, 0);
    } catch {
      return null;
    }
    const b = this.buffer;
    // SQLite writes the second copy, then the first; readers require both equal.
    if (bytes !== b.length || b[IS_INIT] !== 1 || b.compare(b, 0, HEADER_BYTES, HEADER_BYTES, 2 * HEADER_BYTES) !== 0) return null;
    return b.toString('latin1', 0, HEADER_BYTES);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    this.failed = true;
  }
}

/**
 * The stamp the session cache keys on (session-repository.ts): a number that
 * changes whenever a transaction has committed since the last call.
 *
 * - Commits by **this connection** are seen at once through SQLite's
 *   `total_changes()` (rows inserted, updated or deleted by this connection
 *   since it opened: one statement that touches no table and takes no lock,
 *   ~70 ns). better-sqlite3 transactions are synchronous, so between two
 *   calls every write of ours has committed or rolled back; a call made
 *   while a transaction is open gets null (nothing may be cached from
 *   uncommitted data).
 * - Commits by **other connections and processes** (the CLI, an operator's
 *   sqlite3) are seen through the WAL-index header (`CommitStamp`), read at
 *   most once per event-loop turn: a request sees every commit that ended
 *   before the turn it runs in began, as if its read transaction had opened
 *   at the start of that turn (well under a millisecond earlier).
 *
 * A stamp is read before the data it guards, so data is never remembered
 * under a stamp newer than itself.
 */
export class CommitWatch {
  private readonly totalChanges: BetterSqlite3.Statement<[], number>;
  private generation = 0;
  private lastHeader: string | null = null;
  private lastChanges = -1;
  /** The header read in the current event-loop turn (undefined: not read yet). */
  private headerThisTurn: string | null | undefined = undefined;
  private readonly forgetHeader = (): void => {
    this.headerThisTurn = undefined;
  };

  constructor(
    private readonly sqlite: BetterSqlite3.Database,
    private readonly header: CommitStamp,
  ) {
    this.totalChanges = sqlite.prepare<[], number>('SELECT total_changes()').pluck();
  }

  stamp(): number | null {
    if (!this.sqlite.open || this.sqlite.inTransaction) return null;
    const changes = this.totalChanges.get() as number;
    let header = this.headerThisTurn;
    if (header === undefined) {
      header = this.header.read();
      this.headerThisTurn = header;
      setImmediate(this.forgetHeader);
    }
    if (header === null) return null;
    if (header !== this.lastHeader || changes !== this.lastChanges) {
      this.generation += 1;
      this.lastHeader = header;
      this.lastChanges = changes;
    }
    return this.generation;
  }
}
