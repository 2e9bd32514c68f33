import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { users } from '../users/tables.js';

/**
 * Consent history (GDPR Art. 7(1): the controller must be able to show
 * consent; CCPA/VCDPA opt-out of sale/sharing). Append-only per change; the
 * current choice is the latest row per purpose, and no row means "no"
 * (default false). Deleted with the person on erasure.
 */
export const consentHistory = sqliteTable(
  'consent_history',
  {
    id: text('id').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** `marketing` | `saleOrShare` (the names of the API fields). */
    purpose: text('purpose').notNull(),
    granted: integer('granted', { mode: 'boolean' }).notNull(),
    /** Where the change came from: `api` (the person through the API) today. */
    source: text('source').notNull(),
    at: integer('at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [index('consent_history_user_idx').on(t.userId, t.purpose, t.at)],
);

/**
 * Single-use tokens of the privacy flows, mailed to the person: confirming a
 * new email address (`email_change`, carries `newEmail`) and lifting a
 * restriction the person asked for (`restriction_lift`). Only the SHA-256 of
 * the token is stored.
 */
export const privacyTokens = sqliteTable(
  'privacy_tokens',
  {
    id: text('id').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** `email_change` | `restriction_lift`. */
    purpose: text('purpose').notNull(),
    tokenHash: text('token_hash').notNull().unique(),
    /** `email_change`: the normalised address to confirm (personal data: deleted on erasure). */
    newEmail: text('new_email'),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
    usedAt: integer('used_at', { mode: 'timestamp_ms' }),
  },
  (t) => [index('privacy_tokens_user_idx').on(t.userId, t.purpose)],
);
