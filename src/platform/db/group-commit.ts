import type BetterSqlite3 from 'better-sqlite3';

interface Job {
  fn: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit (issue 9): short write transactions that arrive together share
 * one `BEGIN IMMEDIATE … COMMIT`.
 *
 * `run(fn)` queues `fn`; the queue is flushed in a `setImmediate` callback, so
 * every request parsed in the same event-loop turn joins the same batch, and
 * no request waits for a timer. In the flush, each `fn` runs in its own
 * SAVEPOINT inside the one transaction: one that throws is rolled back alone
 * and rejects alone (fail closed for that request), the others go on.
 *
 * Durability is unchanged: a promise resolves only after the COMMIT that
 * contains its work has returned, i.e. after its WAL frames are written, so
 * a SIGKILL never loses an acknowledged write (test/staff/crash-safety.test.ts).
 * If BEGIN or COMMIT fails, every job of the batch rejects and nothing of it
 * is kept.
 *
 * What it saves per request: the BEGIN/COMMIT lock round trips, the WAL
 * frames of the pages all events of a batch share (the audit table's and
 * its indexes' last leaves), and most WAL checkpoints (each one fsyncs).
 */
export class GroupCommit {
  private queue: Job[] = [];
  private scheduled = false;

  constructor(
    private readonly sqlite: BetterSqlite3.Database,
    /** At most this many transactions per COMMIT (bounds the time the loop is held). */
    private readonly maxBatch = 128,
  ) {}

  /** Run `fn` (synchronous, like any transaction body) in the next group commit. */
  run<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
    this.queue = this.queue.length <= this.maxBatch ? [] : this.queue.slice(this.maxBatch);
    this.scheduled = this.queue.length > 0;
    if (this.scheduled) setImmediate(() => this.flush());

    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.sqlite
        .transaction(() => {
          for (const job of batch) {
            try {
              // Nested transaction function: a SAVEPOINT, rolled back alone if it throws.
              outcomes.push({ ok: true, value: this.sqlite.transaction(job.fn)() });
            } catch (error) {
              outcomes.push({ ok: false, error });
            }
          }
        })
        .immediate();
    } catch (error) {
      // BEGIN or COMMIT failed: better-sqlite3 rolled back; nothing was committed.
      for (const job of batch) job.reject(error);
      return;
    }
    // Committed: now, and only now, each caller may answer.
    batch.forEach((job, i) => {
      const outcome = outcomes[i];
      if (outcome?.ok) job.resolve(outcome.value);
      else job.reject(outcome ? outcome.error : new Error('group commit lost a job'));
    });
  }
}
