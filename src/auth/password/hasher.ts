import argon2 from 'argon2';
import type { Argon2Params } from '../../config/load-config.js';

export interface VerifyOutcome {
  ok: boolean;
  /** The stored hash uses weaker parameters than configured: rehash it now. */
  needsRehash: boolean;
}

/**
 * argon2id hashing (OWASP: m ≥ 19 MiB, t ≥ 2, p ≥ 1). The only importer of
 * `argon2`. Unknown accounts are verified against a dummy hash with the same
 * parameters, so they cost the same work as a wrong password (ASVS 6.3.8).
 */
export class PasswordHasher {
  private dummyHash: string | null = null;

  constructor(private readonly params: Argon2Params) {}

  async hash(password: string): Promise<string> {
    return argon2.hash(password, {
      type: argon2.argon2id,
      memoryCost: this.params.memoryCost,
      timeCost: this.params.timeCost,
      parallelism: this.params.parallelism,
    });
  }

  /** Verify `password` against `storedHash`, or against the dummy hash when there is none. */
  async verify(storedHash: string | null, password: string): Promise<VerifyOutcome> {
    if (this.dummyHash === null) this.dummyHash = await this.hash('dummy password for unknown accounts');
    const target = storedHash ?? this.dummyHash;
    let ok: boolean;
    try {
      ok = await argon2.verify(target, password);
    } catch {
      ok = false;
    }
    if (storedHash === null) return { ok: false, needsRehash: false };
    return { ok, needsRehash: ok && argon2.needsRehash(storedHash, this.params) };
  }

  /** Compute the dummy hash up front so the first unknown-email login is not faster. */
  async warmUp(): Promise<void> {
    if (this.dummyHash === null) this.dummyHash = await this.hash('dummy password for unknown accounts');
  }
}
