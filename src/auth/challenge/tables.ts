import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { users } from '../../users/tables.js';

/**
 * Pending second-factor state after a correct password: single-use, expiring
 * (5 min), attempt-capped (10). Only the SHA-256 of its cookie token is stored.
 */
export const mfaChallenges = sqliteTable(
  'mfa_challenges',
  {
    id: text('id').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    tokenHash: text('token_hash').notNull().unique(),
    failures: integer('failures').notNull().default(0),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
    consumedAt: integer('consumed_at', { mode: 'timestamp_ms' }),
  },
  (t) => [index('mfa_challenges_user_idx').on(t.userId)],
);
