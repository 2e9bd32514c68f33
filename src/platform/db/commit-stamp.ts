import { closeSync, openSync, readSync } from 'node:fs';

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
 * Performance (issue 9): reading these 96 bytes is one `pread`, about 1 µs,
 * while opening an SQLite read transaction in the server costs about 20 µs
 * (a SHARED lock via fcntl, an fstat, the WAL-index, then the unlock). The
 * session repository uses the stamp to serve repeated session checks from
 * memory between commits (see session-repository.ts).
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
