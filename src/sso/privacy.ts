import type { PrivacyContributor } from '../privacy/contributor.js';
import { isoOrNull } from '../privacy/contributor.js';

interface IdentityRow {
  id: string;
  connection_id: string;
  connection_name: string | null;
  connection_type: string | null;
  subject: string;
  email: string | null;
  created_at: number;
  last_login_at: number | null;
}

/**
 * SSO identities linked to the person ((connection, subject) and the email
 * asserted at linking) and their break-glass flag. Erasure unlinks every
 * identity: a later SSO login with the same subject starts from scratch.
 */
export const ssoPrivacy: PrivacyContributor = {
  name: 'sso',
  tables: ['sso_identities', 'sso_break_glass'],
  export(sqlite, subject) {
    const identities = sqlite
      .prepare(
        `SELECT i.id, i.connection_id, c.name AS connection_name, c.type AS connection_type, i.subject, i.email, i.created_at, i.last_login_at
           FROM sso_identities i LEFT JOIN sso_connections c ON c.id = i.connection_id
          WHERE i.user_id = ? ORDER BY i.created_at, i.id`,
      )
      .all(subject.userId) as IdentityRow[];
    const breakGlass = sqlite.prepare('SELECT org_id, created_by, created_at FROM sso_break_glass WHERE user_id = ?').get(subject.userId) as
      | { org_id: string; created_by: string | null; created_at: number }
      | undefined;
    return {
      ssoIdentities: identities.map((i) => ({
        id: i.id,
        connectionId: i.connection_id,
        connectionName: i.connection_name,
        protocol: i.connection_type,
        subject: i.subject,
        email: i.email,
        linkedAt: isoOrNull(i.created_at),
        lastLoginAt: isoOrNull(i.last_login_at),
      })),
      ssoBreakGlass: breakGlass ? { orgId: breakGlass.org_id, flaggedBy: breakGlass.created_by, flaggedAt: isoOrNull(breakGlass.created_at) } : null,
    };
  },
  erase(sqlite, subject) {
    const asserted = sqlite.prepare('SELECT email FROM sso_identities WHERE user_id = ? AND email IS NOT NULL').all(subject.userId) as { email: string }[];
    for (const { email } of asserted) subject.emails.add(email);
    sqlite.prepare('DELETE FROM sso_identities WHERE user_id = ?').run(subject.userId);
    sqlite.prepare('DELETE FROM sso_break_glass WHERE user_id = ?').run(subject.userId);
    // Flags they set for other owners keep the flag, without the pseudonymous id of who set it.
    sqlite.prepare('UPDATE sso_break_glass SET created_by = NULL WHERE created_by = ?').run(subject.userId);
  },
};
