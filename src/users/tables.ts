import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { orgs } from '../orgs/tables.js';

/**
 * People who log in. A customer user belongs to exactly one organization
 * (`orgId` + `role`); `orgId` is null only for Cleverom staff principals.
 */
export const users = sqliteTable(
  'users',
  {
    id: text('id').primaryKey(),
    /** Normalised (trimmed, lower-cased, NFC) — unique. */
    email: text('email').notNull().unique(),
    name: text('name').notNull(),
    phone: text('phone'),
    passwordHash: text('password_hash'),
    orgId: text('org_id').references(() => orgs.id, { onDelete: 'restrict' }),
    role: text('role'),
    /** Attestation of 16+ (no birth date is stored). */
    ageConfirmedAt: integer('age_confirmed_at', { mode: 'timestamp_ms' }),
    /** `active` | `restricted` (GDPR Art. 18). */
    status: text('status').notNull().default('active'),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [index('users_org_idx').on(t.orgId)],
);
