import { sql } from 'drizzle-orm';
import { index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { orgs } from '../tables.js';

/**
 * Domains an organization claims. Several organizations may hold a pending
 * claim on a name (so nobody can squat it), but only one can have it
 * verified: the partial unique index is the final arbiter.
 */
export const orgDomains = sqliteTable(
  'org_domains',
  {
    id: text('id').primaryKey(),
    orgId: text('org_id')
      .notNull()
      .references(() => orgs.id, { onDelete: 'cascade' }),
    /** Lower-case ASCII (IDNs in punycode). */
    domain: text('domain').notNull(),
    /** Published as TXT `cleverom-verification=<token>` at `_cleverom-challenge.<domain>`. */
    verificationToken: text('verification_token').notNull(),
    verifiedAt: integer('verified_at', { mode: 'timestamp_ms' }),
    /** `dns` | `manual` (operator or staff override, audited as such). */
    verificationMethod: text('verification_method'),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [
    uniqueIndex('org_domains_org_domain_unique').on(t.orgId, t.domain),
    uniqueIndex('org_domains_verified_unique').on(t.domain).where(sql`verified_at IS NOT NULL`),
    index('org_domains_domain_idx').on(t.domain),
  ],
);
