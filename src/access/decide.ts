/**
 * Pure authorization decisions over staff grants (no I/O). A grant is active
 * when a security_admin approved it, the customer approved it when required,
 * and `startsAt ≤ now < expiresAt`. Several grants may overlap: any active
 * one covering the action allows it, so one grant's end never cuts another short.
 */
export type AccessScope = 'read' | 'write';
export type RequestStatus = 'pending' | 'approved' | 'denied' | 'revoked' | 'expired';
export type CustomerApproval = 'not_required' | 'pending' | 'approved' | 'denied';
export type DenyReason = 'not_staff' | 'no_nda' | 'no_active_grant' | 'wrong_scope';

/** Pending requests lapse after a day (SECURITY.md: staff). */
export const PENDING_REQUEST_TTL_MS = 24 * 60 * 60 * 1000;

export interface GrantState {
  id: string;
  scope: AccessScope;
  status: RequestStatus;
  customerApproval: CustomerApproval;
  requestedAt: Date;
  startsAt: Date | null;
  expiresAt: Date | null;
}

export type Decision = { allow: true; grant: GrantState } | { allow: false; reason: DenyReason };

/** `write` grants cover reads too; `read` grants never cover writes. */
export function covers(grant: AccessScope, action: AccessScope): boolean {
  return grant === 'write' || action === 'read';
}

export function isActive(grant: GrantState, now: Date): boolean {
  return (
    grant.status === 'approved' &&
    (grant.customerApproval === 'not_required' || grant.customerApproval === 'approved') &&
    grant.startsAt !== null &&
    grant.expiresAt !== null &&
    grant.startsAt.getTime() <= now.getTime() &&
    now.getTime() < grant.expiresAt.getTime()
  );
}

/** A calendar date `YYYY-MM-DD` that exists (no 2026-02-31). */
export function isCalendarDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const parsed = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(parsed.getTime()) && parsed.toISOString().slice(0, 10) === value;
}

/**
 * SECURITY.md "staff": an NDA is on record only when signed on or before
 * today (issue 23 item 6). A date in the future is a promise, not a
 * signature, so it counts for nothing until that day comes. "Today" is the
 * UTC date of `now`; a date that is not a real calendar date never counts.
 */
export function ndaOnRecord(ndaSignedAt: string | null, now: Date): boolean {
  if (ndaSignedAt === null || !isCalendarDate(ndaSignedAt)) return false;
  // ISO dates compare as strings.
  return ndaSignedAt <= now.toISOString().slice(0, 10);
}

export function decide(input: { staff: { ndaSignedAt: string | null } | null; grants: readonly GrantState[]; action: AccessScope; now: Date }): Decision {
  if (!input.staff) return { allow: false, reason: 'not_staff' };
  // No NDA on record (none, or dated after today) → no grant is honoured, whatever was approved.
  if (!ndaOnRecord(input.staff.ndaSignedAt, input.now)) return { allow: false, reason: 'no_nda' };
  const active = input.grants.filter((g) => isActive(g, input.now));
  const usable = active.filter((g) => covers(g.scope, input.action));
  if (usable.length === 0) return { allow: false, reason: active.length > 0 ? 'wrong_scope' : 'no_active_grant' };
  // The grant that lasts longest answers (and is named in the audit event).
  const grant = usable.reduce((a, b) => ((a.expiresAt?.getTime() ?? 0) >= (b.expiresAt?.getTime() ?? 0) ? a : b));
  return { allow: true, grant };
}

/** The status shown to people. */
export type RequestView = 'pending' | 'awaiting_customer' | 'active' | 'expired' | 'denied' | 'revoked';

export function viewStatus(grant: GrantState, now: Date): RequestView {
  switch (grant.status) {
    case 'pending':
      return now.getTime() - grant.requestedAt.getTime() >= PENDING_REQUEST_TTL_MS ? 'expired' : 'pending';
    case 'approved':
      if (grant.customerApproval === 'denied') return 'denied';
      if (grant.customerApproval === 'pending') {
        return now.getTime() - grant.requestedAt.getTime() >= PENDING_REQUEST_TTL_MS ? 'expired' : 'awaiting_customer';
      }
      return isActive(grant, now) ? 'active' : 'expired';
    default:
      return grant.status;
  }
}
