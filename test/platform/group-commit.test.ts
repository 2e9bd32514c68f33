/**
 * Group commit (issue 9): calls of one event-loop turn share a COMMIT, each in
 * its own savepoint, and nobody is answered before that COMMIT.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqlite, type SqliteDatabase } from '../../src/platform/db/sqlite.js';

let dir: string;
let database: SqliteDatabase;
let reader: BetterSqlite3.Database;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cleverom-group-'));
  database = openSqlite(join(dir, 'g.db'));
  database.sqlite.exec('CREATE TABLE t (n INTEGER NOT NULL)');
  reader = new BetterSqlite3(join(dir, 'g.db'), { readonly: true });
});
afterEach(() => {
  reader.close();
  database.close();
  rmSync(dir, { recursive: true, force: true });
});

const insert = (n: number) => () => database.sqlite.prepare('INSERT INTO t (n) VALUES (?)').run(n).changes;
const committed = (): number[] => (reader.prepare('SELECT n FROM t ORDER BY n').all() as { n: number }[]).map((r) => r.n);

describe('groupCommit', () => {
  it('runs the calls of one turn in one transaction and answers after its COMMIT', async () => {
    const seenByOthers: number[][] = [];
    const a = database.groupCommit(insert(1));
    const b = database.groupCommit(() => {
      // Another connection does not see the first call's row yet: same, still open, transaction.
      seenByOthers.push(committed());
      return insert(2)();
    });
    expect(committed()).toEqual([]); // nothing runs before the flush
    expect(await Promise.all([a, b])).toEqual([1, 1]);
    expect(seenByOthers).toEqual([[]]);
    expect(committed()).toEqual([1, 2]);
  });

  it('rolls back and rejects only the call that throws', async () => {
    const ok1 = database.groupCommit(insert(1));
    const bad = database.groupCommit(() => {
      insert(99)();
      throw new Error('audit append failed');
    });
    const ok2 = database.groupCommit(insert(2));
    await expect(bad).rejects.toThrow('audit append failed');
    expect(await ok1).toBe(1);
    expect(await ok2).toBe(1);
    expect(committed()).toEqual([1, 2]);
  });

  it('nests the repositories’ own transactions as savepoints', async () => {
    const nested = database.groupCommit(() => database.transaction(() => insert(7)()));
    expect(await nested).toBe(1);
    expect(committed()).toEqual([7]);
  });

  it('rejects the whole batch when the transaction cannot commit', async () => {
    const a = database.groupCommit(insert(1));
    database.close(); // the flush finds no connection: nothing is acknowledged
    await expect(a).rejects.toThrow();
  });
});
