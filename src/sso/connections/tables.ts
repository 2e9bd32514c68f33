import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { orgs } from '../../orgs/tables.js';

/**
 * Per-organization identity-provider connections, `oidc` or `saml`. Both
 * share the row (name, enabled, domains); each protocol has its own nullable
 * columns.
 */
export const ssoConnections = sqliteTable(
  'sso_connections',
  {
    id: text('id').primaryKey(),
    orgId: text('org_id')
      .notNull()
      .references(() => orgs.id, { onDelete: 'cascade' }),
    /** `oidc` | `saml`. */
    type: text('type').notNull(),
    name: text('name').notNull(),
    enabled: integer('enabled', { mode: 'boolean' }).notNull().default(true),
    /** JSON array of lower-case domain names this connection serves (login and JIT need them verified by the org). */
    domains: text('domains').notNull().default('[]'),
    /** OIDC: the issuer identifier, exactly as discovery confirmed it. */
    issuer: text('issuer'),
    clientId: text('client_id'),
    /** OIDC: AES-256-GCM sealed client secret (context `oidc-client-secret:<id>`); never returned. */
    clientSecretSealed: text('client_secret_sealed'),
    /** OIDC: JSON array of requested scopes (always includes `openid`). */
    scopes: text('scopes'),
    /** OIDC: the discovered issuer metadata (JSON), as fetched at creation or issuer change. */
    issuerMetadata: text('issuer_metadata'),
    /** SAML: the IdP's entityID (the only accepted assertion Issuer). */
    samlIdpEntityId: text('saml_idp_entity_id'),
    /** SAML: the IdP's HTTP-Redirect SingleSignOnService URL. */
    samlIdpSsoUrl: text('saml_idp_sso_url'),
    /** SAML: JSON array of the IdP's signing certificates (base64 DER), all trusted (key rollover). */
    samlIdpCertificates: text('saml_idp_certificates'),
    /** SAML: accept IdP-initiated (unsolicited) responses; off unless an admin turns it on. */
    samlAllowIdpInitiated: integer('saml_allow_idp_initiated', { mode: 'boolean' }).notNull().default(false),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [index('sso_connections_org_idx').on(t.orgId)],
);
