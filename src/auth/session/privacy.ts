import type { PrivacyContributor } from '../../privacy/contributor.js';
import { isoOrNull } from '../../privacy/contributor.js';
import { describeDevice } from './routes.js';

interface SessionRow {
  id: string;
  aal: number;
  auth_method: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  reauthenticated_at: number | null;
  second_factor_at: number | null;
  ip: string | null;
  user_agent: string | null;
}

/** Sessions and the devices behind them (IP, user agent). Erasure revokes them all. */
export const sessionsPrivacy: PrivacyContributor = {
  name: 'sessions',
  tables: ['sessions'],
  export(sqlite, subject) {
    const rows = sqlite
      .prepare(
        `SELECT id, aal, auth_method, created_at, last_seen_at, expires_at, reauthenticated_at, second_factor_at, ip, user_agent
           FROM sessions WHERE user_id = ? ORDER BY created_at, id`,
      )
      .all(subject.userId) as SessionRow[];
    return {
      sessions: rows.map((s) => ({
        id: s.id,
        createdAt: isoOrNull(s.created_at),
        lastSeenAt: isoOrNull(s.last_seen_at),
        expiresAt: isoOrNull(s.expires_at),
        reauthenticatedAt: isoOrNull(s.reauthenticated_at),
        secondFactorAt: isoOrNull(s.second_factor_at),
        ip: s.ip,
        userAgent: s.user_agent,
        device: describeDevice(s.user_agent),
        authMethod: s.auth_method,
        aal: s.aal,
      })),
    };
  },
  erase(sqlite, subject) {
    for (const { ip } of sqlite.prepare('SELECT DISTINCT ip FROM sessions WHERE user_id = ? AND ip IS NOT NULL').all(subject.userId) as { ip: string }[]) {
      subject.ips.add(ip);
    }
    sqlite.prepare('DELETE FROM sessions WHERE user_id = ?').run(subject.userId);
  },
};
