import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';

/**
 * The audit chain. Append-only: the code has no update or delete path, and
 * migration triggers refuse both. Keyed rows (every row written since
 * issue 23): `hash = SHA-256(SHA-256(canonical(event)) ‖ prevHash)` and
 * `mac = HMAC-SHA-256(audit key keyId, hash)`; legacy rows (`key_id` NULL,
 * only as a prefix): `hash = SHA-256(canonical(event) ‖ prevHash)`, no MAC
 * (chain.ts, chain-verifier.ts).
 * Personal data never enters the hashed fields: it lives in `audit_pii`, and
 * the event carries only a salted commitment to it, so erasure deletes the
 * side row and the chain still verifies.
 */
export const auditEvents = sqliteTable(
  'audit_events',
  {
    seq: integer('seq').primaryKey(),
    id: text('id').notNull().unique(),
    at: text('at').notNull(),
    action: text('action').notNull(),
    actorType: text('actor_type').notNull(),
    actorId: text('actor_id'),
    orgId: text('org_id'),
    subjectId: text('subject_id'),
    /** Canonical JSON of non-personal event data. */
    data: text('data').notNull(),
    piiCommitment: text('pii_commitment'),
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull(),
    /** HMAC-SHA-256 of `hash` under the audit key `keyId`, hex; NULL on legacy rows. */
    mac: text('mac'),
    /** Id of the audit key that made `mac`; NULL marks a legacy row. */
    keyId: text('key_id'),
  },
  (t) => [
    index('audit_org_idx').on(t.orgId, t.seq),
    index('audit_actor_idx').on(t.actorId, t.seq),
    index('audit_subject_idx').on(t.subjectId, t.seq),
    index('audit_action_idx').on(t.action, t.seq),
  ],
);

export const auditPii = sqliteTable(
  'audit_pii',
  {
    seq: integer('seq').primaryKey(),
    /** The person this personal data is about (for export and erasure). */
    userId: text('user_id'),
    salt: text('salt').notNull(),
    data: text('data').notNull(),
  },
  (t) => [index('audit_pii_user_idx').on(t.userId)],
);
