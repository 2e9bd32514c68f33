import type BetterSqlite3 from 'better-sqlite3';
import type { AuditEventInput } from '../../audit/events.js';
import type { SqliteAuditLog } from '../../audit/sqlite-audit.js';
import type { SqliteDatabase } from '../../platform/db/sqlite.js';
import type { ConnectionType, SsoConnection } from './connection.js';

export interface ConnectionChanges {
  name?: string;
  enabled?: boolean;
  domains?: string[];
  oidc?: SsoConnection['oidc'];
  saml?: SsoConnection['saml'];
}

/** SSO connections. Each write is one transaction with its audit event. */
export interface ConnectionRepository {
  byId(connectionId: string): Promise<SsoConnection | null>;
  listByOrg(orgId: string): Promise<SsoConnection[]>;
  create(connection: SsoConnection, event: AuditEventInput): Promise<void>;
  /** False when the connection is not in `orgId`. */
  update(orgId: string, connectionId: string, changes: ConnectionChanges, at: Date, event: AuditEventInput): Promise<boolean>;
  /** False when the connection is not in `orgId`. Identities and pending logins go with it. */
  delete(orgId: string, connectionId: string, event: AuditEventInput): Promise<boolean>;
}

interface ConnectionRow {
  id: string;
  org_id: string;
  type: string;
  name: string;
  enabled: number;
  domains: string;
  issuer: string | null;
  client_id: string | null;
  client_secret_sealed: string | null;
  scopes: string | null;
  issuer_metadata: string | null;
  saml_idp_entity_id: string | null;
  saml_idp_sso_url: string | null;
  saml_idp_certificates: string | null;
  saml_allow_idp_initiated: number;
  created_at: number;
  updated_at: number;
}

function toConnection(row: ConnectionRow): SsoConnection {
  const oidc =
    row.type === 'oidc' && row.issuer !== null && row.client_id !== null && row.client_secret_sealed !== null
      ? {
          issuer: row.issuer,
          clientId: row.client_id,
          clientSecretSealed: row.client_secret_sealed,
          scopes: JSON.parse(row.scopes ?? '["openid"]') as string[],
          metadata: JSON.parse(row.issuer_metadata ?? '{}') as Record<string, unknown>,
        }
      : null;
  const saml =
    row.type === 'saml' && row.saml_idp_entity_id !== null && row.saml_idp_sso_url !== null && row.saml_idp_certificates !== null
      ? {
          idpEntityId: row.saml_idp_entity_id,
          idpSsoUrl: row.saml_idp_sso_url,
          idpCertificates: JSON.parse(row.saml_idp_certificates) as string[],
          allowIdpInitiatedSaml: row.saml_allow_idp_initiated === 1,
        }
      : null;
  return {
    id: row.id,
    orgId: row.org_id,
    type: row.type as ConnectionType,
    name: row.name,
    enabled: row.enabled === 1,
    domains: JSON.parse(row.domains) as string[],
    oidc,
    saml,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

export class SqliteConnectionRepository implements ConnectionRepository {
  private readonly sqlite: BetterSqlite3.Database;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly audit: SqliteAuditLog,
  ) {
    this.sqlite = database.sqlite;
  }

  async byId(connectionId: string): Promise<SsoConnection | null> {
    const row = this.sqlite.prepare('SELECT * FROM sso_connections WHERE id = ?').get(connectionId) as ConnectionRow | undefined;
    return row ? toConnection(row) : null;
  }

  async listByOrg(orgId: string): Promise<SsoConnection[]> {
    return (this.sqlite.prepare('SELECT * FROM sso_connections WHERE org_id = ? ORDER BY created_at, id').all(orgId) as ConnectionRow[]).map(toConnection);
  }

  async create(c: SsoConnection, event: AuditEventInput): Promise<void> {
    this.database.transaction(() => {
      this.sqlite
        .prepare(
          `INSERT INTO sso_connections (id, org_id, type, name, enabled, domains, issuer, client_id, client_secret_sealed, scopes, issuer_metadata,
             saml_idp_entity_id, saml_idp_sso_url, saml_idp_certificates, saml_allow_idp_initiated, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          c.id, c.orgId, c.type, c.name, c.enabled ? 1 : 0, JSON.stringify(c.domains),
          c.oidc?.issuer ?? null, c.oidc?.clientId ?? null, c.oidc?.clientSecretSealed ?? null,
          c.oidc ? JSON.stringify(c.oidc.scopes) : null, c.oidc ? JSON.stringify(c.oidc.metadata) : null,
          c.saml?.idpEntityId ?? null, c.saml?.idpSsoUrl ?? null, c.saml ? JSON.stringify(c.saml.idpCertificates) : null, c.saml?.allowIdpInitiatedSaml ? 1 : 0,
          c.createdAt.getTime(), c.updatedAt.getTime(),
        );
      this.audit.append(event);
    });
  }

  async update(orgId: string, connectionId: string, changes: ConnectionChanges, at: Date, event: AuditEventInput): Promise<boolean> {
    return this.database.transaction(() => {
      const sets: string[] = ['updated_at = ?'];
      const args: unknown[] = [at.getTime()];
      if (changes.name !== undefined) { sets.push('name = ?'); args.push(changes.name); }
      if (changes.enabled !== undefined) { sets.push('enabled = ?'); args.push(changes.enabled ? 1 : 0); }
      if (changes.domains !== undefined) { sets.push('domains = ?'); args.push(JSON.stringify(changes.domains)); }
      if (changes.oidc) {
        sets.push('issuer = ?', 'client_id = ?', 'client_secret_sealed = ?', 'scopes = ?', 'issuer_metadata = ?');
        args.push(changes.oidc.issuer, changes.oidc.clientId, changes.oidc.clientSecretSealed, JSON.stringify(changes.oidc.scopes), JSON.stringify(changes.oidc.metadata));
      }
      if (changes.saml) {
        sets.push('saml_idp_entity_id = ?', 'saml_idp_sso_url = ?', 'saml_idp_certificates = ?', 'saml_allow_idp_initiated = ?');
        args.push(changes.saml.idpEntityId, changes.saml.idpSsoUrl, JSON.stringify(changes.saml.idpCertificates), changes.saml.allowIdpInitiatedSaml ? 1 : 0);
      }
      const result = this.sqlite.prepare(`UPDATE sso_connections SET ${sets.join(', ')} WHERE id = ? AND org_id = ?`).run(...args, connectionId, orgId);
      if (result.changes === 0) return false;
      this.audit.append(event);
      return true;
    });
  }

  async delete(orgId: string, connectionId: string, event: AuditEventInput): Promise<boolean> {
    return this.database.transaction(() => {
      const result = this.sqlite.prepare('DELETE FROM sso_connections WHERE id = ? AND org_id = ?').run(connectionId, orgId);
      if (result.changes === 0) return false;
      this.audit.append(event);
      return true;
    });
  }
}
