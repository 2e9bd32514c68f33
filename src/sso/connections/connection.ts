import { X509Certificate } from 'node:crypto';

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

/**
 * SAML 2.0 IdP settings of a connection (SAML metadata §2.4.3 IDPSSODescriptor):
 * what the IdP's metadata or its admin told us, already validated.
 */
export interface SamlSettings {
  /** The IdP's entityID; assertions must carry exactly this Issuer. */
  idpEntityId: string;
  /** The IdP's SingleSignOnService for the HTTP-Redirect binding. */
  idpSsoUrl: string;
  /** Every signing certificate (base64 DER), so a key rollover at the IdP keeps working. */
  idpCertificates: string[];
  /**
   * Accept unsolicited (IdP-initiated) responses. Off by default: they carry
   * no InResponseTo, so nothing ties them to a login this service started
   * (SECURITY.md "SAML SP"; DESIGN.md rule 5).
   */
  allowIdpInitiatedSaml: boolean;
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
  /** Null for OIDC connections. */
  saml: SamlSettings | null;
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
  /** SAML IdP values; null (or empty) for OIDC connections. */
  idpEntityId: string | null;
  idpSsoUrl: string | null;
  idpCertificates: CertificateSummary[];
  allowIdpInitiatedSaml: boolean | null;
  createdAt: string;
  updatedAt: string;
}

/** The one OIDC redirect URI of the service: PUBLIC_URL + `/v1/sso/oidc/callback`. */
export function oidcRedirectUri(publicUrl: URL): string {
  return new URL('/v1/sso/oidc/callback', publicUrl).href;
}

/** A signing certificate as shown to admins (never the key material itself is needed to identify it). */
export interface CertificateSummary {
  sha256Fingerprint: string;
  subject: string;
  notAfter: string;
}

/**
 * Our SAML entity id for a connection: one per connection, so that an
 * assertion addressed to one organization's connection is refused by every
 * other one even when both trust the same IdP key (SAML core §2.5.1.4
 * AudienceRestriction). It is the metadata URL, so it resolves.
 */
export function samlSpEntityId(publicUrl: URL, connectionId: string): string {
  return samlMetadataUrl(publicUrl, connectionId);
}

/** The Assertion Consumer Service (HTTP-POST binding) of a connection. */
export function samlAcsUrl(publicUrl: URL, connectionId: string): string {
  return new URL(`/v1/sso/saml/${encodeURIComponent(connectionId)}/acs`, publicUrl).href;
}

export function samlMetadataUrl(publicUrl: URL, connectionId: string): string {
  return new URL(`/v1/sso/saml/${encodeURIComponent(connectionId)}/metadata`, publicUrl).href;
}

/** Fingerprint, subject and expiry of a base64 DER certificate (already validated when stored). */
export function certificateSummary(base64Der: string): CertificateSummary {
  const certificate = new X509Certificate(Buffer.from(base64Der, 'base64'));
  return {
    sha256Fingerprint: certificate.fingerprint256,
    subject: certificate.subject.replace(/\n/g, ', '),
    notAfter: new Date(certificate.validTo).toISOString(),
  };
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
    spEntityId: connection.type === 'saml' ? samlSpEntityId(publicUrl, connection.id) : null,
    acsUrl: connection.type === 'saml' ? samlAcsUrl(publicUrl, connection.id) : null,
    metadataUrl: connection.type === 'saml' ? samlMetadataUrl(publicUrl, connection.id) : null,
    idpEntityId: connection.saml?.idpEntityId ?? null,
    idpSsoUrl: connection.saml?.idpSsoUrl ?? null,
    idpCertificates: connection.saml ? connection.saml.idpCertificates.map(certificateSummary) : [],
    allowIdpInitiatedSaml: connection.saml ? connection.saml.allowIdpInitiatedSaml : null,
    createdAt: connection.createdAt.toISOString(),
    updatedAt: connection.updatedAt.toISOString(),
  };
}
