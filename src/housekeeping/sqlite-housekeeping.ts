import { DAY_MS } from '../platform/clock.js';
import type { SqliteDatabase } from '../platform/db/sqlite.js';

/**
 * Deletes rows whose purpose has ended, so the database holds no personal
 * data longer than it needs (GDPR Art. 5(1)(e)) and stays small. Nothing here
 * is an action of anyone, so nothing is audited. Safe to run on every
 * instance at any time: each statement only removes rows already unusable.
 */
export const PURGES = [
  // Sessions past their absolute or idle expiry.
  { name: 'sessions', sql: 'DELETE FROM sessions WHERE expires_at <= @now OR last_seen_at + idle_timeout_ms <= @now' },
  // Reset tokens a day after use or expiry (the hourly send limit counts the last hour).
  { name: 'passwordResetTokens', sql: 'DELETE FROM password_reset_tokens WHERE COALESCE(used_at, expires_at) <= @now - @day' },
  // MFA challenges a day after use or expiry.
  { name: 'mfaChallenges', sql: 'DELETE FROM mfa_challenges WHERE COALESCE(consumed_at, expires_at) <= @now - @day' },
  // Invitations 30 days after acceptance or expiry (they carry an email address).
  { name: 'invitations', sql: 'DELETE FROM invitations WHERE COALESCE(accepted_at, expires_at) <= @now - 30 * @day' },
] as const;

export type PurgeCounts = Record<(typeof PURGES)[number]['name'], number>;

export function purgeExpired(database: SqliteDatabase, now: Date): PurgeCounts {
  return database.transaction(() => {
    const counts = {} as PurgeCounts;
    for (const purge of PURGES) {
      counts[purge.name] = database.sqlite.prepare(purge.sql).run({ now: now.getTime(), day: DAY_MS }).changes;
    }
    return counts;
  });
}
