import { currentConsents } from './consents.js';
import type { PrivacyContributor } from './contributor.js';
import { isoOrNull } from './contributor.js';

/** The privacy feature's own tables: consent history and the mailed single-use tokens. */
export const consentsAndTokensPrivacy: PrivacyContributor = {
  name: 'privacy',
  tables: ['consent_history', 'privacy_tokens'],
  export(sqlite, subject) {
    const current = currentConsents(sqlite, subject.userId);
    const history = sqlite
      .prepare('SELECT purpose, granted, source, at FROM consent_history WHERE user_id = ? ORDER BY at, id')
      .all(subject.userId) as { purpose: string; granted: number; source: string; at: number }[];
    const tokens = sqlite
      .prepare('SELECT purpose, new_email, created_at, expires_at, used_at FROM privacy_tokens WHERE user_id = ? ORDER BY created_at, id')
      .all(subject.userId) as { purpose: string; new_email: string | null; created_at: number; expires_at: number; used_at: number | null }[];
    return {
      consents: {
        marketing: current.marketing,
        saleOrShare: current.saleOrShare,
        updatedAt: current.updatedAt?.toISOString() ?? null,
        history: history.map((h) => ({ purpose: h.purpose, granted: h.granted === 1, source: h.source, at: isoOrNull(h.at) })),
      },
      privacyRequests: tokens.map((t) => ({
        kind: t.purpose,
        ...(t.new_email === null ? {} : { newEmail: t.new_email }),
        createdAt: isoOrNull(t.created_at),
        expiresAt: isoOrNull(t.expires_at),
        usedAt: isoOrNull(t.used_at),
      })),
    };
  },
  erase(sqlite, subject) {
    const pending = sqlite.prepare('SELECT new_email FROM privacy_tokens WHERE user_id = ? AND new_email IS NOT NULL').all(subject.userId) as { new_email: string }[];
    for (const { new_email } of pending) subject.emails.add(new_email);
    sqlite.prepare('DELETE FROM consent_history WHERE user_id = ?').run(subject.userId);
    sqlite.prepare('DELETE FROM privacy_tokens WHERE user_id = ?').run(subject.userId);
  },
};
