import type { PrivacyContributor } from '../../privacy/contributor.js';
import { isoOrNull } from '../../privacy/contributor.js';

interface FactorRow {
  status: string;
  created_at: number;
  confirmed_at: number | null;
  failures: number;
  locked_until: number | null;
}

interface ChallengeRow {
  id: string;
  failures: number;
  created_at: number;
  expires_at: number;
  consumed_at: number | null;
}

/**
 * Second-factor metadata: whether TOTP is set up and when, how many recovery
 * codes are left, pending MFA challenges. Never the sealed secret, code
 * hashes or challenge token hashes.
 */
export const totpPrivacy: PrivacyContributor = {
  name: 'mfa',
  tables: ['totp_factors', 'recovery_codes', 'mfa_challenges'],
  export(sqlite, subject) {
    const factor = sqlite
      .prepare('SELECT status, created_at, confirmed_at, failures, locked_until FROM totp_factors WHERE user_id = ?')
      .get(subject.userId) as FactorRow | undefined;
    const codes = sqlite
      .prepare('SELECT COUNT(*) AS total, COUNT(*) - COUNT(used_at) AS unused, MIN(created_at) AS created_at FROM recovery_codes WHERE user_id = ?')
      .get(subject.userId) as { total: number; unused: number; created_at: number | null };
    const used = sqlite
      .prepare('SELECT used_at FROM recovery_codes WHERE user_id = ? AND used_at IS NOT NULL ORDER BY used_at')
      .all(subject.userId) as { used_at: number }[];
    const challenges = sqlite
      .prepare('SELECT id, failures, created_at, expires_at, consumed_at FROM mfa_challenges WHERE user_id = ? ORDER BY created_at, id')
      .all(subject.userId) as ChallengeRow[];
    return {
      mfa: {
        totp: factor
          ? {
              status: factor.status,
              createdAt: isoOrNull(factor.created_at),
              confirmedAt: isoOrNull(factor.confirmed_at),
              consecutiveFailures: factor.failures,
              lockedUntil: isoOrNull(factor.locked_until),
            }
          : null,
        recoveryCodes: { total: codes.total, unused: codes.unused, createdAt: isoOrNull(codes.created_at), usedAt: used.map((u) => isoOrNull(u.used_at)) },
        challenges: challenges.map((c) => ({
          id: c.id,
          createdAt: isoOrNull(c.created_at),
          expiresAt: isoOrNull(c.expires_at),
          consumedAt: isoOrNull(c.consumed_at),
          failures: c.failures,
        })),
      },
    };
  },
  erase(sqlite, subject) {
    sqlite.prepare('DELETE FROM mfa_challenges WHERE user_id = ?').run(subject.userId);
    sqlite.prepare('DELETE FROM recovery_codes WHERE user_id = ?').run(subject.userId);
    sqlite.prepare('DELETE FROM totp_factors WHERE user_id = ?').run(subject.userId);
  },
};
