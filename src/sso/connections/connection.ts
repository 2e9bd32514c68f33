/** SSO connection records and their public view (secrets never leave the service). */
export type ConnectionType = 'oidc' | 'saml';

export interface OidcSettings {
  issuer: string;
  clientId: string;
  /** Sealed with context {@link clientSecretContext}. */
  clientSecretSealed: string;
  scopes: string[];
  /** Issuer metadata as discovered (OpenID Connect Discovery 1.0 §3). */
  metadata: Record<string, unknown>;
}

export interface SsoConnection {
  id: string;
  orgId: string;
  type: ConnectionType;
  name: string;
  enabled: boolean;
  /** Lower-case domain names this connection serves; only those the org verified count. */
  domains: string[];
  /** Null for SAML connections. */
  oidc: OidcSettings | null;
  createdAt: Date;
  updatedAt: Date;
}

/** AES-GCM additional data binding a sealed client secret to its connection. */
export function clientSecretContext(connectionId: string): string {
  return `oidc-client-secret:${connectionId}`;
}

export interface ConnectionView {
  id: string;
  type: ConnectionType;
  name: string;
  enabled: boolean;
  domains: string[];
  issuer: string | null;
  clientId: string | null;
  scopes: string[];
  /** Register this at the IdP (OIDC). */
  redirectUri: string | null;
  /** SAML SP values; null for OIDC connections. */
  spEntityId: string | null;
  acsUrl: string | null;
  metadataUrl: string | null;
  createdAt: string;
  updatedAt: string;
}

/** The one OIDC redirect URI of the service: PUBLIC_URL + `/v1/sso/oidc/callback`. */
export function oidcRedirectUri(publicUrl: URL): string {
  return new URL('/v1/sso/oidc/callback', publicUrl).href;
}

export function connectionView(connection: SsoConnection, publicUrl: URL): ConnectionView {
  return {
    id: connection.id,
    type: connection.type,
    name: connection.name,
    enabled: connection.enabled,
    domains: [...connection.domains],
    issuer: connection.oidc?.issuer ?? null,
    clientId: connection.oidc?.clientId ?? null,
    scopes: connection.oidc ? [...connection.oidc.scopes] : [],
    redirectUri: connection.type === 'oidc' ? oidcRedirectUri(publicUrl) : null,
    spEntityId: null,
    acsUrl: null,
    metadataUrl: null,
    createdAt: connection.createdAt.toISOString(),
    updatedAt: connection.updatedAt.toISOString(),
  };
}
