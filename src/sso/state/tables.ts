import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { ssoConnections } from '../connections/tables.js';

/**
 * One-time SSO login transactions (OIDC `state` + `nonce` + PKCE verifier;
 * SAML AuthnRequest id), kept server-side, single-use, 10-minute expiry.
 * Only the SHA-256 of `state` and of the browser-binding cookie are stored.
 * SAML rows are keyed by the SHA-256 of `saml:<connectionId>:<requestId>`
 * (the request id is namespaced per connection) and have no browser
 * binding: the IdP's POST to the ACS is cross-site, so no SameSite=Lax
 * cookie comes with it (SECURITY.md "SAML state").
 */
export const ssoTransactions = sqliteTable(
  'sso_transactions',
  {
    id: text('id').primaryKey(),
    /** `oidc` | `saml`. */
    protocol: text('protocol').notNull(),
    connectionId: text('connection_id')
      .notNull()
      .references(() => ssoConnections.id, { onDelete: 'cascade' }),
    stateHash: text('state_hash').notNull().unique(),
    /** SHA-256 of the random value in the browser's `cleverom_sso` cookie (RFC 9700 §4.7.1: bind to the user agent). */
    bindingHash: text('binding_hash').notNull(),
    nonce: text('nonce'),
    codeVerifier: text('code_verifier'),
    /** SAML: the AuthnRequest ID expected in InResponseTo. */
    requestId: text('request_id'),
    returnTo: text('return_to').notNull(),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
    consumedAt: integer('consumed_at', { mode: 'timestamp_ms' }),
  },
  (t) => [index('sso_transactions_expires_idx').on(t.expiresAt)],
);
