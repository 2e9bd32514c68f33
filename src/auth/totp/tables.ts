import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { users } from '../../users/tables.js';

/** One TOTP factor per user: `pending` until confirmed with a valid code. */
export const totpFactors = sqliteTable('totp_factors', {
  userId: text('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  /** AES-256-GCM sealed base32 secret (never stored in clear). */
  secretSealed: text('secret_sealed').notNull(),
  status: text('status').notNull(),
  /** RFC 6238 §5.2: the last accepted time step; a step ≤ it is refused. */
  lastUsedStep: integer('last_used_step'),
  /** Consecutive wrong codes; every 5th starts a 30 s backoff. */
  failures: integer('failures').notNull().default(0),
  lockedUntil: integer('locked_until', { mode: 'timestamp_ms' }),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
  confirmedAt: integer('confirmed_at', { mode: 'timestamp_ms' }),
});

export const recoveryCodes = sqliteTable(
  'recovery_codes',
  {
    id: text('id').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** SHA-256 of the normalised code (80 random bits each). */
    codeHash: text('code_hash').notNull(),
    usedAt: integer('used_at', { mode: 'timestamp_ms' }),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [index('recovery_codes_user_idx').on(t.userId, t.codeHash)],
);
