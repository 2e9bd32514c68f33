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
 * Events whose personal side row, filed under the actor (their IP and user
 * agent), also holds ANOTHER person's email — and who that person is, by
 * role and by the id the event names them with. Closed: a new event that
 * stores someone else's email beside the actor's details must be listed.
 */
const EMAIL_OF_ANOTHER_PERSON: Readonly<Record<string, { role: string; idKey: string }>> = Object.freeze({
  // The invitee's address (org-service.ts `invite`); the event's subject is the invitation.
  'invitation.created': { role: 'invitee', idKey: 'invitationId' },
});

/**
 * The personal details of an event as the person may receive them (GDPR
 * Art. 15(4): the copy must not adversely affect the rights of others):
 * another person's email is left out, and that person is named by role and
 * id instead.
 */
function ownDetails(action: string, subjectId: string | null, details: JsonValue): JsonValue {
  const other = EMAIL_OF_ANOTHER_PERSON[action];
  if (other === undefined || details === null || typeof details !== 'object' || Array.isArray(details) || !('email' in details)) return details;
  const { email: _othersEmail, ...own } = details;
  return { ...own, otherPerson: { role: other.role, [other.idKey]: subjectId } };
}

/**
 * The audit events about the person (as subject or actor) with the personal
 * details recorded about them (IP, user agent, email in `audit_pii`) —
 * without another person's email that some side rows hold beside the
 * actor's details (see `EMAIL_OF_ANOTHER_PERSON`).
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
        personalDetails: r.pii_data === null ? null : ownDetails(r.action, r.subject_id, JSON.parse(r.pii_data) as JsonValue),
      })),
    };
  },
  erase(sqlite, subject) {
    const details = sqlite.prepare("SELECT json_extract(data, '$.ip') AS ip FROM audit_pii WHERE user_id = ?").all(subject.userId) as { ip: string | null }[];
    for (const { ip } of details) if (ip) subject.ips.add(ip);
    sqlite.prepare("DELETE FROM audit_pii WHERE user_id = ? OR json_extract(data, '$.email') = ?").run(subject.userId, subject.email);
  },
};
