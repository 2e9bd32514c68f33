import { MINUTE } from '../../platform/clock.js';

/** Pending MFA challenge limits (SECURITY.md: TOTP). */
export const CHALLENGE_TTL_MS = 5 * MINUTE;
export const CHALLENGE_MAX_FAILURES = 10;

export interface MfaChallenge {
  id: string;
  userId: string;
  failures: number;
  expiresAt: Date;
  consumedAt: Date | null;
}

/** Usable: not consumed, not expired, fewer than 10 failures. */
export function challengeUsable(challenge: MfaChallenge, now: Date): boolean {
  return challenge.consumedAt === null && now.getTime() < challenge.expiresAt.getTime() && challenge.failures < CHALLENGE_MAX_FAILURES;
}
