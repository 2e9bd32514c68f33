import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { orgs } from '../orgs/tables.js';
import { users } from '../users/tables.js';

/** Cleverom employees. Their login identity is a `users` row with no organization. */
export const staffMembers = sqliteTable('staff_members', {
  userId: text('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  /** `support` | `engineer` | `security_admin`. */
  role: text('role').notNull(),
  /** Date the NDA was signed (YYYY-MM-DD); null → can never hold a grant. */
  ndaSignedAt: text('nda_signed_at'),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
});

/**
 * Just-in-time access: a request becomes a grant once a security_admin other
 * than the requester approves it (and the customer, when the organization
 * requires that). A grant is active from `startsAt` until `expiresAt`.
 */
export const accessRequests = sqliteTable(
  'access_requests',
  {
    id: text('id').primaryKey(),
    staffId: text('staff_id').notNull(),
    orgId: text('org_id')
      .notNull()
      .references(() => orgs.id, { onDelete: 'cascade' }),
    /** `read` | `write`. */
    scope: text('scope').notNull(),
    reason: text('reason').notNull(),
    ticket: text('ticket'),
    durationMinutes: integer('duration_minutes').notNull(),
    /** `pending` | `approved` | `denied` | `revoked` | `expired`. */
    status: text('status').notNull(),
    /** `not_required` | `pending` | `approved` | `denied`. */
    customerApproval: text('customer_approval').notNull(),
    requestedAt: integer('requested_at', { mode: 'timestamp_ms' }).notNull(),
    decidedBy: text('decided_by'),
    decidedAt: integer('decided_at', { mode: 'timestamp_ms' }),
    decisionComment: text('decision_comment'),
    customerDecidedBy: text('customer_decided_by'),
    customerDecidedAt: integer('customer_decided_at', { mode: 'timestamp_ms' }),
    startsAt: integer('starts_at', { mode: 'timestamp_ms' }),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }),
    revokedBy: text('revoked_by'),
    revokedAt: integer('revoked_at', { mode: 'timestamp_ms' }),
  },
  (t) => [index('access_requests_staff_org_idx').on(t.staffId, t.orgId, t.status), index('access_requests_org_idx').on(t.orgId, t.requestedAt)],
);
