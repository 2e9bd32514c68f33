import type { PrivacyContributor } from '../privacy/contributor.js';
import type { JsonValue } from './events.js';

interface EventRow {
  seq: number;
  id: string;
  at: string;
  action: string;
  actor_type: string;
  actor_id: string | null;
  org_id: string | null;
  subject_id: string | null;
  data: string;
  pii_user_id: string | null;
  pii_data: string | null;
}

/**
 * The audit events about the person (as subject or actor) with the personal
 * details recorded about them (IP, user agent, email in `audit_pii`).
 *
 * Erasure deletes those details — and any other event's details naming
 * their email (e.g. the invitation that was sent to them) — but never an
 * `audit_events` row: the rows carry pseudonymous ids only, the salted
 * commitment to the deleted details stays, and the chain still verifies.
 */
export const auditPrivacy: PrivacyContributor = {
  name: 'audit',
  tables: ['audit_events', 'audit_pii'],
  export(sqlite, subject) {
    const rows = sqlite
      .prepare(
        `SELECT e.seq, e.id, e.at, e.action, e.actor_type, e.actor_id, e.org_id, e.subject_id, e.data,
                p.user_id AS pii_user_id, p.data AS pii_data
           FROM audit_events e LEFT JOIN audit_pii p ON p.seq = e.seq AND p.user_id = @id
          WHERE e.subject_id = @id OR e.actor_id = @id OR p.user_id = @id
          ORDER BY e.seq`,
      )
      .all({ id: subject.userId }) as EventRow[];
    return {
      auditEvents: rows.map((r) => ({
        seq: r.seq,
        id: r.id,
        at: r.at,
        action: r.action,
        actorType: r.actor_type,
        actorId: r.actor_id,
        orgId: r.org_id,
        subjectId: r.subject_id,
        data: JSON.parse(r.data) as JsonValue,
        personalDetails: r.pii_data === null ? null : (JSON.parse(r.pii_data) as JsonValue),
      })),
    };
  },
  erase(sqlite, subject) {
    const details = sqlite.prepare("SELECT json_extract(data, '$.ip') AS ip FROM audit_pii WHERE user_id = ?").all(subject.userId) as { ip: string | null }[];
    for (const { ip } of details) if (ip) subject.ips.add(ip);
    sqlite.prepare("DELETE FROM audit_pii WHERE user_id = ? OR json_extract(data, '$.email') = ?").run(subject.userId, subject.email);
  },
};
