import type { PrivacyContributor } from '../../privacy/contributor.js';
import { isoOrNull } from '../../privacy/contributor.js';
import { throttleKey } from './password-service.js';

interface ResetRow {
  id: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

/**
 * Password resets (dates only, never the token hash) and the per-account
 * login throttle, which is keyed by a hash of the email address.
 */
export const passwordPrivacy: PrivacyContributor = {
  name: 'password',
  tables: ['password_reset_tokens', 'login_throttle'],
  export(sqlite, subject) {
    const resets = sqlite
      .prepare('SELECT id, created_at, expires_at, used_at FROM password_reset_tokens WHERE user_id = ? ORDER BY created_at, id')
      .all(subject.userId) as ResetRow[];
    const throttle = sqlite.prepare('SELECT failures, locked_until, updated_at FROM login_throttle WHERE key = ?').get(throttleKey(subject.email)) as
      | { failures: number; locked_until: number | null; updated_at: number }
      | undefined;
    return {
      passwordResets: resets.map((r) => ({ id: r.id, requestedAt: isoOrNull(r.created_at), expiresAt: isoOrNull(r.expires_at), usedAt: isoOrNull(r.used_at) })),
      loginThrottle: throttle
        ? { consecutiveFailures: throttle.failures, lockedUntil: isoOrNull(throttle.locked_until), updatedAt: isoOrNull(throttle.updated_at) }
        : null,
    };
  },
  erase(sqlite, subject) {
    sqlite.prepare('DELETE FROM password_reset_tokens WHERE user_id = ?').run(subject.userId);
    sqlite.prepare('DELETE FROM login_throttle WHERE key = ?').run(throttleKey(subject.email));
  },
};
