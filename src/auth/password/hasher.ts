import { availableParallelism } from 'node:os';
import argon2 from 'argon2';
import type { Argon2Admission, Argon2Params } from '../../config/load-config.js';
import { AppError } from '../../platform/errors.js';

export interface VerifyOutcome {
  ok: boolean;
  /** The stored hash uses weaker parameters than configured: rehash it now. */
  needsRehash: boolean;
}

/** Seconds a client is told to wait when the argon2 queue is full. */
const BUSY_RETRY_SECONDS = 1;

/**
 * argon2id hashing (OWASP: m ≥ 19 MiB, t ≥ 2, p ≥ 1). The only importer of
 * `argon2`. Unknown accounts are verified against a dummy hash with the same
 * parameters, so they cost the same work as a wrong password (ASVS 6.3.8).
 *
 * Admission control (issue 9): every hash and verification takes one of
 * `maxConcurrent` slots (configuration: `defaultArgon2Concurrency` in
 * config/load-config.ts). argon2 runs on libuv's thread pool; running more
 * 19 MiB computations than cores only time-slices them (every login slower,
 * none more per second), so with a pool of one thread per core (the
 * production entry point, bin/server.cjs) a slot means "running or queued
 * right behind a running one", and with a larger pool the slots are the
 * cores. At most `maxQueued` calls wait for a slot, first come first
 * served; one more is refused at once with `429 rate_limited` and
 * `Retry-After`, before any password is looked at, so a login burst gets a
 * fast answer instead of an unbounded queue (and the refusal is the same for
 * known and unknown accounts).
 */
export class PasswordHasher {
  private dummyHash: string | null = null;
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly admission: Argon2Admission;

  constructor(
    private readonly params: Argon2Params,
    admission?: Argon2Admission,
  ) {
    const cores = availableParallelism();
    this.admission = admission ?? { maxConcurrent: cores, maxQueued: 8 * cores };
  }

  /** Calls waiting for a slot now (for metrics and tests). */
  get queued(): number {
    return this.waiting.length;
  }

  private async slot<T>(work: () => Promise<T>): Promise<T> {
    if (this.active < this.admission.maxConcurrent) {
      this.active += 1;
    } else {
      if (this.waiting.length >= this.admission.maxQueued) {
        throw new AppError('rate_limited', {
          publicDetail: 'Too many password checks are in progress. Retry in a second.',
          extra: { retryAfter: BUSY_RETRY_SECONDS },
          headers: { 'retry-after': String(BUSY_RETRY_SECONDS) },
        });
      }
      // The caller that releases a slot hands it over (active stays the same).
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active -= 1;
    }
  }

  async hash(password: string): Promise<string> {
    return this.slot(() =>
      argon2.hash(password, {
        type: argon2.argon2id,
        memoryCost: this.params.memoryCost,
        timeCost: this.params.timeCost,
        parallelism: this.params.parallelism,
      }),
    );
  }

  /** Verify `password` against `storedHash`, or against the dummy hash when there is none. */
  async verify(storedHash: string | null, password: string): Promise<VerifyOutcome> {
    if (this.dummyHash === null) this.dummyHash = await this.hash('dummy password for unknown accounts');
    const target = storedHash ?? this.dummyHash;
    const ok = await this.slot(async () => {
      try {
        return await argon2.verify(target, password);
      } catch {
        return false;
      }
    });
    if (storedHash === null) return { ok: false, needsRehash: false };
    return { ok, needsRehash: ok && argon2.needsRehash(storedHash, this.params) };
  }

  /** Compute the dummy hash up front so the first unknown-email login is not faster. */
  async warmUp(): Promise<void> {
    if (this.dummyHash === null) this.dummyHash = await this.hash('dummy password for unknown accounts');
  }
}
