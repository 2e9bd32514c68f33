import type { PrivacyContributor } from '../privacy/contributor.js';
import { isoOrNull } from '../privacy/contributor.js';
import { toAccessRequest, type AccessRequestRow } from './staff.js';

/**
 * Staff principals and their access requests / grants, plus the requests a
 * person decided (as security_admin, or as a customer owner/admin approving
 * staff access to their organization).
 *
 * Erasure deletes the staff record. The access requests stay: they are the
 * insider-risk record of who touched customer data (GDPR Art. 17(3)(b)/(e)),
 * and carry only pseudonymous ids of the people involved.
 */
export const staffPrivacy: PrivacyContributor = {
  name: 'staff',
  tables: ['staff_members', 'access_requests'],
  export(sqlite, subject) {
    const member = sqlite.prepare('SELECT role, nda_signed_at, created_at FROM staff_members WHERE user_id = ?').get(subject.userId) as
      | { role: string; nda_signed_at: string | null; created_at: number }
      | undefined;
    const requested = (
      sqlite.prepare('SELECT * FROM access_requests WHERE staff_id = ? ORDER BY requested_at, id').all(subject.userId) as AccessRequestRow[]
    ).map(toAccessRequest);
    const decided = sqlite
      .prepare(
        `SELECT id, org_id, decided_by, decided_at, customer_decided_by, customer_decided_at, revoked_by, revoked_at, status
           FROM access_requests WHERE decided_by = @id OR customer_decided_by = @id OR revoked_by = @id ORDER BY requested_at, id`,
      )
      .all({ id: subject.userId }) as {
      id: string;
      org_id: string;
      decided_by: string | null;
      decided_at: number | null;
      customer_decided_by: string | null;
      customer_decided_at: number | null;
      revoked_by: string | null;
      revoked_at: number | null;
      status: string;
    }[];
    return {
      staff: member ? { role: member.role, ndaSignedAt: member.nda_signed_at, createdAt: isoOrNull(member.created_at) } : null,
      staffAccessRequests: requested.map((r) => ({
        id: r.id,
        orgId: r.orgId,
        scope: r.scope,
        reason: r.reason,
        ticket: r.ticket,
        durationMinutes: r.durationMinutes,
        status: r.status,
        customerApproval: r.customerApproval,
        requestedAt: r.requestedAt.toISOString(),
        decidedAt: r.decidedAt?.toISOString() ?? null,
        startsAt: r.startsAt?.toISOString() ?? null,
        expiresAt: r.expiresAt?.toISOString() ?? null,
        revokedAt: r.revokedAt?.toISOString() ?? null,
      })),
      staffAccessDecisions: decided.flatMap((d) => [
        ...(d.decided_by === subject.userId ? [{ requestId: d.id, orgId: d.org_id, as: 'security_admin', at: isoOrNull(d.decided_at) }] : []),
        ...(d.customer_decided_by === subject.userId ? [{ requestId: d.id, orgId: d.org_id, as: 'customer', at: isoOrNull(d.customer_decided_at) }] : []),
        ...(d.revoked_by === subject.userId ? [{ requestId: d.id, orgId: d.org_id, as: 'revoker', at: isoOrNull(d.revoked_at) }] : []),
      ]),
    };
  },
  erase(sqlite, subject) {
    sqlite.prepare('DELETE FROM staff_members WHERE user_id = ?').run(subject.userId);
  },
};
