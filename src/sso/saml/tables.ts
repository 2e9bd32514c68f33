import { index, integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { ssoConnections } from '../connections/tables.js';

/**
 * SAML assertion replay cache (SECURITY.md "SAML SP": a persistent replay
 * cache of assertion ids until they expire; SAML profiles §4.1.4.5). An
 * assertion ID accepted once on a connection is refused ever after, for
 * SP- and IdP-initiated responses alike, across restarts and processes.
 * Rows are kept until the assertion could no longer be accepted anyway,
 * then purged. No personal data: ids chosen by the IdP and times.
 */
export const samlSeenAssertions = sqliteTable(
  'saml_seen_assertions',
  {
    connectionId: text('connection_id')
      .notNull()
      .references(() => ssoConnections.id, { onDelete: 'cascade' }),
    assertionId: text('assertion_id').notNull(),
    seenAt: integer('seen_at', { mode: 'timestamp_ms' }).notNull(),
    /** After this the assertion is expired for every check, so the row may go. */
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.connectionId, t.assertionId] }), index('saml_seen_assertions_expires_idx').on(t.expiresAt)],
);
