import type { AuditEventInput, RequestContext } from '../../audit/events.js';
import { normalizeDomain, type VerifiedDomains } from '../../orgs/domains/domain-service.js';
import type { Org } from '../../orgs/org.js';
import type { SsoConnectionProbe } from '../../orgs/org-service.js';
import type { PlanCatalogue } from '../../plans/plans.js';
import type { Clock } from '../../platform/clock.js';
import type { SecretBox } from '../../platform/crypto/secret-box.js';
import { AppError, validationFailed, type FieldError } from '../../platform/errors.js';
import { newId } from '../../platform/ids.js';
import type { User } from '../../users/user.js';
import { metadataUrls, type OidcClientSettings, type OidcRelyingParty } from '../oidc/oidc-client.js';
import { MAX_IDP_CERTIFICATES, normalizeCertificate, splitCertificates } from '../saml/certificates.js';
import { parseIdpMetadata } from '../saml/metadata.js';
import {
  certificateSummary, clientSecretContext, connectionView, oidcRedirectUri, type ConnectionView, type OidcSettings, type SamlSettings, type SsoConnection,
} from './connection.js';
import type { ConnectionChanges, ConnectionRepository } from './connection-repository.js';
import { checkOutboundUrl, urlShapeProblem, type OutboundPolicy } from './ssrf-guard.js';

export const DEFAULT_SCOPES = ['openid', 'email', 'profile'] as const;

export interface CreateOidcConnection {
  type: 'oidc';
  name: string;
  issuer: string;
  clientId: string;
  clientSecret: string;
  scopes?: string[] | undefined;
  domains: string[];
}

/**
 * A SAML connection: from the IdP's metadata (`idpMetadataXml`) or from its
 * three values given by hand. Not both.
 */
export interface CreateSamlConnection {
  type: 'saml';
  name: string;
  idpMetadataXml?: string | undefined;
  idpEntityId?: string | undefined;
  idpSsoUrl?: string | undefined;
  /** PEM (one or a bundle) or base64 DER; a list for rollover. */
  idpCertificate?: string | string[] | undefined;
  domains?: string[] | undefined;
  /** Dangerous, off by default: accept IdP-initiated (unsolicited) responses. */
  allowIdpInitiatedSaml?: boolean | undefined;
}

export interface UpdateConnection {
  name?: string | undefined;
  enabled?: boolean | undefined;
  domains?: string[] | undefined;
  issuer?: string | undefined;
  clientId?: string | undefined;
  clientSecret?: string | undefined;
  scopes?: string[] | undefined;
  idpMetadataXml?: string | undefined;
  idpEntityId?: string | undefined;
  idpSsoUrl?: string | undefined;
  idpCertificate?: string | string[] | undefined;
  allowIdpInitiatedSaml?: boolean | undefined;
}

/** A connection that may be used to log in right now, with its organization. */
export interface ActiveConnection {
  connection: SsoConnection;
  org: Org;
}

export type ConnectionStatus =
  | ({ kind: 'active' } & ActiveConnection)
  | { kind: 'missing' }
  | { kind: 'disabled'; connection: SsoConnection }
  | { kind: 'plan_lacks_sso'; connection: SsoConnection };

/**
 * Per-organization IdP configuration (feature `sso`): OIDC issuer discovery
 * at creation behind the SSRF guard, client secrets sealed at rest
 * (SECURITY.md: secrets at rest); SAML IdP metadata or values validated at
 * creation; every change audited.
 *
 * An enabled connection lists at least one domain its organization has
 * verified (docs/threat-model.md, "IdP confusion"): a connection may be
 * created with unverified domains, but it is then created disabled, and
 * enabling it (or leaving it enabled with no verified domain through a
 * domain change) is `409 conflict` naming the unverified domains. Only such
 * connections count for `enforceSso`.
 */
export class ConnectionService implements SsoConnectionProbe {
  constructor(
    private readonly deps: {
      repo: ConnectionRepository;
      orgs: { get(orgId: string): Promise<Org> };
      plans: PlanCatalogue;
      secretBox: SecretBox;
      rp: OidcRelyingParty;
      outbound: OutboundPolicy;
      domains: VerifiedDomains;
      clock: Clock;
      publicUrl: URL;
    },
  ) {}

  view(connection: SsoConnection): ConnectionView {
    return connectionView(connection, this.deps.publicUrl);
  }

  async list(orgId: string): Promise<ConnectionView[]> {
    return (await this.deps.repo.listByOrg(orgId)).map((c) => this.view(c));
  }

  /** A connection of `orgId`, or 404 (another tenant's connection does not exist for you). */
  async get(orgId: string, connectionId: string): Promise<SsoConnection> {
    const connection = await this.deps.repo.byId(connectionId);
    if (!connection || connection.orgId !== orgId) throw new AppError('not_found');
    return connection;
  }

  /** Enabled connections of `orgId`, oldest first (whatever the plan says). */
  async enabledConnections(orgId: string): Promise<SsoConnection[]> {
    return (await this.deps.repo.listByOrg(orgId)).filter((c) => c.enabled);
  }

  /**
   * {@link SsoConnectionProbe}: `PATCH /v1/orgs/:orgId {settings:{enforceSso:true}}`
   * needs an enabled connection with a verified domain (one enabled before
   * that rule existed, with none verified, does not count).
   */
  async hasEnabledConnection(orgId: string): Promise<boolean> {
    for (const c of await this.deps.repo.listByOrg(orgId)) {
      if (c.enabled && (await this.verifiedDomainsOf(orgId, c.domains)).length > 0) return true;
    }
    return false;
  }

  /** Which of `domains` the organization has verified (DNS TXT or manually). */
  private async verifiedDomainsOf(orgId: string, domains: readonly string[]): Promise<string[]> {
    const verified: string[] = [];
    for (const domain of domains) if (await this.deps.domains.isVerifiedFor(orgId, domain)) verified.push(domain);
    return verified;
  }

  /**
   * A connection is enabled only with at least one verified domain: JIT
   * provisioning and linking need one anyway, and an enabled connection
   * that can sign nobody in would let `enforceSso` strand the organization
   * (issue: an OIDC connection enabled for an unverified domain was
   * accepted silently). `409 conflict` naming the unverified domains.
   */
  private async refuseEnablingWithoutVerifiedDomain(orgId: string, domains: readonly string[]): Promise<void> {
    if ((await this.verifiedDomainsOf(orgId, domains)).length > 0) return;
    const publicDetail =
      domains.length === 0
        ? 'A connection can be enabled only once it lists a verified domain; this one lists none.'
        : `A connection can be enabled only once at least one of its domains is verified. Not verified yet: ${domains.join(', ')}. Verify one under Domains first.`;
    throw new AppError('conflict', { publicDetail, extra: { unverifiedDomains: [...domains] } });
  }

  /**
   * Whether the connection can log people in now: it exists, is enabled, and
   * its organization still has feature `sso` (API.md: after a downgrade,
   * connections become inactive).
   */
  async status(connectionId: string): Promise<ConnectionStatus> {
    const connection = await this.deps.repo.byId(connectionId);
    if (!connection) return { kind: 'missing' };
    if (!connection.enabled) return { kind: 'disabled', connection };
    const org = await this.deps.orgs.get(connection.orgId).catch(() => null);
    if (!org || !this.deps.plans.has(org.plan, 'sso')) return { kind: 'plan_lacks_sso', connection };
    return { kind: 'active', connection, org };
  }

  /** Active connections of `orgId` that list `domain`, oldest first. */
  async activeForDomain(orgId: string, domain: string): Promise<ActiveConnection[]> {
    const org = await this.deps.orgs.get(orgId).catch(() => null);
    if (!org || !this.deps.plans.has(org.plan, 'sso')) return [];
    return (await this.deps.repo.listByOrg(orgId)).filter((c) => c.enabled && c.domains.includes(domain)).map((connection) => ({ connection, org }));
  }

  /** The OIDC settings the relying party needs (secret unsealed only here, only in memory). */
  oidcSettings(connection: SsoConnection): OidcClientSettings {
    if (!connection.oidc) throw new Error(`connection ${connection.id} is not an OIDC connection`);
    return {
      connectionId: connection.id,
      issuerMetadata: connection.oidc.metadata,
      clientId: connection.oidc.clientId,
      clientSecret: this.deps.secretBox.open(connection.oidc.clientSecretSealed, clientSecretContext(connection.id)),
      scopes: connection.oidc.scopes,
      redirectUri: oidcRedirectUri(this.deps.publicUrl),
    };
  }

  async create(org: Org, actor: User, input: CreateOidcConnection | CreateSamlConnection, context: RequestContext): Promise<ConnectionView> {
    if (input.type === 'saml') return this.createSaml(org, actor, input, context);
    const domains = parseDomains(input.domains);
    const scopes = parseScopes(input.scopes);
    const id = newId();
    const discovered = await this.discover(input.issuer, input.clientId);
    const now = this.deps.clock.now();
    // Created disabled while none of its domains is verified (see the class comment).
    const enabled = (await this.verifiedDomainsOf(org.id, domains)).length > 0;
    const connection: SsoConnection = {
      id,
      orgId: org.id,
      type: 'oidc',
      name: input.name.trim(),
      enabled,
      domains,
      oidc: {
        issuer: discovered.issuer,
        clientId: input.clientId,
        clientSecretSealed: this.deps.secretBox.seal(input.clientSecret, clientSecretContext(id)),
        scopes,
        metadata: discovered.metadata,
      },
      saml: null,
      createdAt: now,
      updatedAt: now,
    };
    await this.deps.repo.create(
      connection,
      this.event('sso.connection.created', connection, actor, context, { type: 'oidc', issuer: discovered.issuer, domains, enabled }),
    );
    return this.view(connection);
  }

  /**
   * A SAML connection (SAML metadata §2.4.3): the IdP's settings validated
   * now — metadata parsed without DTDs, the SSO URL https, every
   * certificate parseable — each failure a `400 validation_failed` naming
   * the field. Our SP values (entity id, ACS, metadata URL) are derived
   * from the new connection's id.
   */
  private async createSaml(org: Org, actor: User, input: CreateSamlConnection, context: RequestContext): Promise<ConnectionView> {
    const domains = parseDomains(input.domains ?? []);
    const idp = this.samlIdp(input, null);
    const now = this.deps.clock.now();
    // Created disabled while none of its domains is verified (see the class comment).
    const enabled = (await this.verifiedDomainsOf(org.id, domains)).length > 0;
    const connection: SsoConnection = {
      id: newId(),
      orgId: org.id,
      type: 'saml',
      name: input.name.trim(),
      enabled,
      domains,
      oidc: null,
      saml: { ...idp, allowIdpInitiatedSaml: input.allowIdpInitiatedSaml === true },
      createdAt: now,
      updatedAt: now,
    };
    await this.deps.repo.create(
      connection,
      this.event('sso.connection.created', connection, actor, context, {
        type: 'saml',
        idpEntityId: idp.idpEntityId,
        domains,
        enabled,
        allowIdpInitiatedSaml: connection.saml?.allowIdpInitiatedSaml ?? false,
        certificates: idp.idpCertificates.map((c) => certificateSummary(c).sha256Fingerprint),
      }),
    );
    return this.view(connection);
  }

  /**
   * The IdP half of SAML settings from metadata or from the three values,
   * over `current` (PATCH). Field names in errors are the request's.
   */
  private samlIdp(
    input: Pick<CreateSamlConnection, 'idpMetadataXml' | 'idpEntityId' | 'idpSsoUrl' | 'idpCertificate'>,
    current: Omit<SamlSettings, 'allowIdpInitiatedSaml'> | null,
  ): Omit<SamlSettings, 'allowIdpInitiatedSaml'> {
    const manual = input.idpEntityId !== undefined || input.idpSsoUrl !== undefined || input.idpCertificate !== undefined;
    if (input.idpMetadataXml !== undefined) {
      if (manual) throw validationFailed([{ field: 'idpMetadataXml', message: 'give either idpMetadataXml or idpEntityId, idpSsoUrl and idpCertificate, not both' }]);
      const parsed = parseIdpMetadata(input.idpMetadataXml);
      if (parsed.kind === 'invalid') throw validationFailed([{ field: 'idpMetadataXml', message: parsed.message }], `The IdP metadata could not be used: ${parsed.message}.`);
      const urlProblem = this.ssoUrlProblem(parsed.metadata.ssoUrl);
      if (urlProblem) throw validationFailed([{ field: 'idpMetadataXml', message: `the SingleSignOnService Location ${urlProblem}` }]);
      return { idpEntityId: parsed.metadata.entityId, idpSsoUrl: parsed.metadata.ssoUrl, idpCertificates: parsed.metadata.certificates };
    }
    const errors: FieldError[] = [];
    const entityId = input.idpEntityId?.trim() ?? current?.idpEntityId;
    if (entityId === undefined) errors.push({ field: 'idpEntityId', message: 'is required (or give idpMetadataXml)' });
    else if (entityId === '' || /\s/.test(entityId) || entityId.length > 1024) errors.push({ field: 'idpEntityId', message: 'must be the IdP entityID, a URI without spaces' });
    const ssoUrl = input.idpSsoUrl?.trim() ?? current?.idpSsoUrl;
    if (ssoUrl === undefined) errors.push({ field: 'idpSsoUrl', message: 'is required (or give idpMetadataXml)' });
    else {
      const problem = this.ssoUrlProblem(ssoUrl);
      if (problem) errors.push({ field: 'idpSsoUrl', message: problem });
    }
    let certificates = current?.idpCertificates;
    if (input.idpCertificate !== undefined) {
      const given = (Array.isArray(input.idpCertificate) ? input.idpCertificate : [input.idpCertificate]).flatMap(splitCertificates);
      certificates = [];
      given.forEach((raw, i) => {
        const normalized = normalizeCertificate(raw);
        const field = given.length === 1 ? 'idpCertificate' : `idpCertificate.${i}`;
        if (normalized === null) errors.push({ field, message: 'must be an X.509 certificate (PEM or base64 DER) with an RSA or EC key' });
        else if (!certificates?.includes(normalized)) certificates?.push(normalized);
      });
      if (given.length > MAX_IDP_CERTIFICATES) errors.push({ field: 'idpCertificate', message: `at most ${MAX_IDP_CERTIFICATES} certificates` });
    }
    if (certificates === undefined) errors.push({ field: 'idpCertificate', message: 'is required (or give idpMetadataXml)' });
    if (errors.length > 0 || entityId === undefined || ssoUrl === undefined || certificates === undefined) throw validationFailed(errors);
    return { idpEntityId: entityId, idpSsoUrl: ssoUrl, idpCertificates: certificates };
  }

  /** The browser, not us, visits the IdP's SSO URL: its shape is checked (https), not its address. */
  private ssoUrlProblem(value: string): string | null {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return 'must be a URL';
    }
    if (value.length > 2048) return 'is too long';
    return urlShapeProblem(url, this.deps.outbound);
  }

  async update(org: Org, actor: User, connectionId: string, input: UpdateConnection, context: RequestContext): Promise<ConnectionView> {
    const current = await this.get(org.id, connectionId);
    const changes: ConnectionChanges = {};
    const changed: string[] = [];
    if (input.name !== undefined) { changes.name = input.name.trim(); changed.push('name'); }
    if (input.domains !== undefined) { changes.domains = parseDomains(input.domains); changed.push('domains'); }
    if (input.enabled !== undefined && input.enabled !== current.enabled) {
      if (!input.enabled) await this.refuseIfLastEnforced(org, current);
      changes.enabled = input.enabled;
      changed.push('enabled');
    }
    // Enabled afterwards, and enabled or re-domained now: it must list a verified domain.
    if ((changes.enabled ?? current.enabled) && (changes.enabled === true || changes.domains !== undefined)) {
      await this.refuseEnablingWithoutVerifiedDomain(org.id, changes.domains ?? current.domains);
    }
    const touchesOidc = input.issuer !== undefined || input.clientId !== undefined || input.clientSecret !== undefined || input.scopes !== undefined;
    if (touchesOidc) {
      if (!current.oidc) throw validationFailed([{ field: 'issuer', message: 'only OIDC connections have OIDC settings' }]);
      const next: OidcSettings = { ...current.oidc };
      if (input.scopes !== undefined) { next.scopes = parseScopes(input.scopes); changed.push('scopes'); }
      if (input.clientId !== undefined) { next.clientId = input.clientId; changed.push('clientId'); }
      if (input.clientSecret !== undefined) {
        next.clientSecretSealed = this.deps.secretBox.seal(input.clientSecret, clientSecretContext(current.id));
        changed.push('clientSecret');
      }
      if (input.issuer !== undefined) {
        const discovered = await this.discover(input.issuer, next.clientId);
        next.issuer = discovered.issuer;
        next.metadata = discovered.metadata;
        changed.push('issuer');
      }
      changes.oidc = next;
    }
    const touchesSaml =
      input.idpMetadataXml !== undefined || input.idpEntityId !== undefined || input.idpSsoUrl !== undefined || input.idpCertificate !== undefined || input.allowIdpInitiatedSaml !== undefined;
    if (touchesSaml) {
      if (!current.saml) throw validationFailed([{ field: input.allowIdpInitiatedSaml !== undefined ? 'allowIdpInitiatedSaml' : 'idpEntityId', message: 'only SAML connections have SAML settings' }]);
      const idp = this.samlIdp(input, current.saml);
      const next: SamlSettings = { ...idp, allowIdpInitiatedSaml: input.allowIdpInitiatedSaml ?? current.saml.allowIdpInitiatedSaml };
      if (input.idpMetadataXml !== undefined) changed.push('idpMetadataXml');
      if (next.idpEntityId !== current.saml.idpEntityId) changed.push('idpEntityId');
      if (next.idpSsoUrl !== current.saml.idpSsoUrl) changed.push('idpSsoUrl');
      if (JSON.stringify(next.idpCertificates) !== JSON.stringify(current.saml.idpCertificates)) changed.push('idpCertificate');
      if (next.allowIdpInitiatedSaml !== current.saml.allowIdpInitiatedSaml) changed.push('allowIdpInitiatedSaml');
      changes.saml = next;
    }
    const data: AuditEventInput['data'] = { changed, ...(changes.enabled !== undefined ? { enabled: changes.enabled } : {}), ...(changes.domains ? { domains: changes.domains } : {}) };
    if (changes.oidc && input.issuer !== undefined) data.issuer = changes.oidc.issuer;
    if (changes.saml) {
      data.idpEntityId = changes.saml.idpEntityId;
      data.allowIdpInitiatedSaml = changes.saml.allowIdpInitiatedSaml;
      data.certificates = changes.saml.idpCertificates.map((c) => certificateSummary(c).sha256Fingerprint);
    }
    const ok = await this.deps.repo.update(org.id, current.id, changes, this.deps.clock.now(), this.event('sso.connection.updated', current, actor, context, data));
    if (!ok) throw new AppError('not_found');
    if (touchesOidc) this.deps.rp.forget(current.id);
    return this.view(await this.get(org.id, current.id));
  }

  async delete(org: Org, actor: User, connectionId: string, context: RequestContext): Promise<void> {
    const current = await this.get(org.id, connectionId);
    if (current.enabled) await this.refuseIfLastEnforced(org, current);
    const ok = await this.deps.repo.delete(org.id, current.id, this.event('sso.connection.deleted', current, actor, context, { type: current.type }));
    if (!ok) throw new AppError('not_found');
    this.deps.rp.forget(current.id);
  }

  /**
   * While the org enforces SSO, its last enabled connection with a verified
   * domain stays (turn enforcement off first).
   */
  private async refuseIfLastEnforced(org: Org, connection: SsoConnection): Promise<void> {
    if (!org.settings.enforceSso) return;
    const others: SsoConnection[] = [];
    for (const c of await this.deps.repo.listByOrg(org.id)) {
      if (c.enabled && c.id !== connection.id && (await this.verifiedDomainsOf(org.id, c.domains)).length > 0) others.push(c);
    }
    if (others.length === 0) {
      throw new AppError('conflict', { publicDetail: 'This is the last enabled connection and the organization enforces SSO. Turn enforceSso off first.' });
    }
  }

  /**
   * Issuer discovery behind the SSRF guard. Every failure is a
   * `400 validation_failed` naming `issuer`.
   */
  private async discover(issuerInput: string, clientId: string): Promise<{ issuer: string; metadata: Record<string, unknown> }> {
    const fail = (message: string): AppError => validationFailed([{ field: 'issuer', message }], `The issuer could not be used: ${message}.`);
    let issuer: URL;
    try {
      issuer = new URL(issuerInput);
    } catch {
      throw fail('must be a URL');
    }
    const problem = await checkOutboundUrl(issuer, this.deps.outbound);
    if (problem) throw fail(problem);
    const outcome = await this.deps.rp.discover(issuer, clientId);
    if (outcome.kind === 'failed') throw fail(outcome.message);
    // Every endpoint the metadata names is held to the same rules as the issuer.
    for (const { field, url } of metadataUrls(outcome.metadata)) {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        throw fail(`metadata ${field} is not a URL`);
      }
      // The browser, not us, visits the authorization endpoint: its shape is checked, not its address.
      const endpointProblem = field === 'authorization_endpoint' ? urlShapeProblem(parsed, this.deps.outbound) : await checkOutboundUrl(parsed, this.deps.outbound);
      if (endpointProblem) throw fail(`metadata ${field} ${endpointProblem}`);
    }
    return { issuer: outcome.issuer, metadata: outcome.metadata };
  }

  private event(action: string, connection: SsoConnection, actor: User, context: RequestContext, data: AuditEventInput['data']): AuditEventInput {
    return {
      action,
      actor: { type: 'user', id: actor.id },
      orgId: connection.orgId,
      subjectId: connection.id,
      data: { connectionId: connection.id, ...data },
      pii: { userId: actor.id, ...context },
    };
  }
}

function parseDomains(input: string[]): string[] {
  const errors: FieldError[] = [];
  const out: string[] = [];
  input.forEach((raw, i) => {
    const domain = normalizeDomain(raw);
    if (!domain) errors.push({ field: `domains.${i}`, message: 'must be a domain name such as example.com' });
    else if (!out.includes(domain)) out.push(domain);
  });
  if (errors.length > 0) throw validationFailed(errors);
  return out;
}

/** `openid` is always requested (OIDC Core §3.1.2.1), first. */
function parseScopes(input: string[] | undefined): string[] {
  const scopes = input === undefined ? [...DEFAULT_SCOPES] : input.filter((s) => s !== 'openid');
  return ['openid', ...scopes.filter((s, i) => s !== 'openid' && scopes.indexOf(s) === i)];
}
