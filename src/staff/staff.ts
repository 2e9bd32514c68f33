import type { AccessScope, CustomerApproval, GrantState, RequestStatus } from '../access/decide.js';

export const STAFF_ROLES = ['support', 'engineer', 'security_admin'] as const;
export type StaffRole = (typeof STAFF_ROLES)[number];

export interface StaffMember {
  userId: string;
  role: StaffRole;
  ndaSignedAt: string | null;
}

export interface AccessRequest extends GrantState {
  staffId: string;
  orgId: string;
  reason: string;
  ticket: string | null;
  durationMinutes: number;
  decidedBy: string | null;
  decidedAt: Date | null;
  decisionComment: string | null;
  customerDecidedBy: string | null;
  customerDecidedAt: Date | null;
  revokedBy: string | null;
  revokedAt: Date | null;
}

export interface AccessRequestRow {
  id: string;
  staff_id: string;
  org_id: string;
  scope: string;
  reason: string;
  ticket: string | null;
  duration_minutes: number;
  status: string;
  customer_approval: string;
  requested_at: number;
  decided_by: string | null;
  decided_at: number | null;
  decision_comment: string | null;
  customer_decided_by: string | null;
  customer_decided_at: number | null;
  starts_at: number | null;
  expires_at: number | null;
  revoked_by: string | null;
  revoked_at: number | null;
}

const date = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));

export function toAccessRequest(r: AccessRequestRow): AccessRequest {
  return {
    id: r.id,
    staffId: r.staff_id,
    orgId: r.org_id,
    scope: r.scope as AccessScope,
    reason: r.reason,
    ticket: r.ticket,
    durationMinutes: r.duration_minutes,
    status: r.status as RequestStatus,
    customerApproval: r.customer_approval as CustomerApproval,
    requestedAt: new Date(r.requested_at),
    decidedBy: r.decided_by,
    decidedAt: date(r.decided_at),
    decisionComment: r.decision_comment,
    customerDecidedBy: r.customer_decided_by,
    customerDecidedAt: date(r.customer_decided_at),
    startsAt: date(r.starts_at),
    expiresAt: date(r.expires_at),
    revokedBy: r.revoked_by,
    revokedAt: date(r.revoked_at),
  };
}
