import { index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { orgs } from '../orgs/tables.js';
import { users } from '../users/tables.js';
import { ssoConnections } from './connections/tables.js';

/** SSO identities: (connection, subject) → user (SECURITY.md: account linking). */
export const ssoIdentities = sqliteTable(
  'sso_identities',
  {
    id: text('id').primaryKey(),
    connectionId: text('connection_id')
      .notNull()
      .references(() => ssoConnections.id, { onDelete: 'cascade' }),
    /** OIDC `sub` / SAML NameID, exactly as asserted. */
    subject: text('subject').notNull(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** The email asserted when the identity was linked (personal data: deleted with the user). */
    email: text('email'),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    lastLoginAt: integer('last_login_at', { mode: 'timestamp_ms' }),
  },
  (t) => [uniqueIndex('sso_identities_connection_subject_unique').on(t.connectionId, t.subject), index('sso_identities_user_idx').on(t.userId)],
);

/** Owners allowed to keep using their password while the org enforces SSO (audited on every use). */
export const ssoBreakGlass = sqliteTable('sso_break_glass', {
  userId: text('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  orgId: text('org_id')
    .notNull()
    .references(() => orgs.id, { onDelete: 'cascade' }),
  createdBy: text('created_by'),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
});
