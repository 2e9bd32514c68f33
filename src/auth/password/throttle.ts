/**
 * Per-account throttling (API.md "Login", SECURITY.md "throttling"): after 5
 * consecutive failures each further attempt waits 1 s, doubling per failure up
 * to 15 min; 100 consecutive failures disable password login until a password
 * reset (NIST SP 800-63B §3.2.2 ceiling). Keys are hashes of the email, so an
 * unknown email is throttled exactly like a real one.
 */
export const FREE_FAILURES = 5;
export const MAX_LOCK_SECONDS = 15 * 60;
export const DISABLE_AFTER_FAILURES = 100;

export interface ThrottleState {
  failures: number;
  lockedUntil: Date | null;
}

export function lockAfter(failures: number, now: Date): Date | null {
  if (failures < FREE_FAILURES) return null;
  if (failures >= DISABLE_AFTER_FAILURES) return new Date(8_640_000_000_000_000); // until a reset clears it
  const seconds = Math.min(MAX_LOCK_SECONDS, 2 ** (failures - FREE_FAILURES));
  return new Date(now.getTime() + seconds * 1000);
}

/** Seconds left on the lock, or 0 when the account may try now. */
export function secondsLocked(state: ThrottleState | null, now: Date): number {
  if (!state?.lockedUntil) return 0;
  const ms = state.lockedUntil.getTime() - now.getTime();
  if (ms <= 0) return 0;
  return Math.min(MAX_LOCK_SECONDS, Math.ceil(ms / 1000));
}
