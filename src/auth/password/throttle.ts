/**
 * Per-account throttling (API.md "Login", SECURITY.md "throttling"): after 5
 * consecutive failures each further attempt waits 1 s, doubling per failure up
 * to 15 min; 100 consecutive failures disable password login until a password
 * reset (NIST SP 800-63B-4 §3.2.2 ceiling). Keys are hashes of the email, so
 * an unknown email is throttled exactly like a real one.
 *
 * Attempts are reserved, not counted afterwards (issue 23 item 1): before any
 * argon2 work, one conditional write both reads the counter and counts the
 * attempt as a failure (password-repository.ts `reserveAttempt`). A locked
 * account refuses the reservation, so however many requests run in parallel,
 * at most `FREE_FAILURES` of them are ever checked before the lock applies;
 * the same holds across instances sharing one database, because the decision
 * is the row's own update. A correct password then clears the counter; a
 * wrong one is already counted. An attempt that ran no hash (the argon2 queue
 * refused it) gives its reservation back.
 */
export const FREE_FAILURES = 5;
export const MAX_LOCK_SECONDS = 15 * 60;
export const DISABLE_AFTER_FAILURES = 100;
/** The lock that only a password reset lifts (the largest date JavaScript has). */
export const LOCKED_FOR_GOOD = new Date(8_640_000_000_000_000);

/** What a reservation gives: a turn to check a password, or the lock in force. */
export type AttemptReservation =
  | { kind: 'reserved'; /** consecutive failures counting this attempt */ failures: number }
  | { kind: 'locked'; lockedUntil: Date };

/** Seconds left on the lock, or 0 when the account may try now. */
export function secondsLocked(lockedUntil: Date | null, now: Date): number {
  if (!lockedUntil) return 0;
  const ms = lockedUntil.getTime() - now.getTime();
  if (ms <= 0) return 0;
  return Math.min(MAX_LOCK_SECONDS, Math.ceil(ms / 1000));
}
