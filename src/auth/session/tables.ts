import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { users } from '../../users/tables.js';

export const sessions = sqliteTable(
  'sessions',
  {
    id: text('id').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** SHA-256 of the token; the token itself is never stored. */
    tokenHash: text('token_hash').notNull().unique(),
    aal: integer('aal').notNull(),
    authMethod: text('auth_method').notNull(),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    lastSeenAt: integer('last_seen_at', { mode: 'timestamp_ms' }).notNull(),
    /** Absolute expiry. */
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
    idleTimeoutMs: integer('idle_timeout_ms').notNull(),
    reauthenticatedAt: integer('reauthenticated_at', { mode: 'timestamp_ms' }),
    /** The last second-factor proof in this session (AAL2 login or enrolment, reauthentication with a code). */
    secondFactorAt: integer('second_factor_at', { mode: 'timestamp_ms' }),
    ip: text('ip'),
    userAgent: text('user_agent'),
  },
  (t) => [index('sessions_user_idx').on(t.userId)],
);
