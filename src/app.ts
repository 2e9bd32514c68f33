import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import cookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { AuditKeyRing } from './audit/audit-keys.js';
import { AuditService } from './audit/audit-service.js';
import { AuditCheckpoints } from './audit/checkpoints.js';
import { SqliteAuditLog } from './audit/sqlite-audit.js';
import { PasswordHasher } from './auth/password/hasher.js';
import { SqlitePasswordRepository } from './auth/password/password-repository.js';
import { PasswordService } from './auth/password/password-service.js';
import { passwordRoutes } from './auth/password/routes.js';
import { SqliteSessionRepository } from './auth/session/session-repository.js';
import { SessionService } from './auth/session/session-service.js';
import { sessionRoutes } from './auth/session/routes.js';
import { totpRoutes } from './auth/totp/routes.js';
import { SqliteTotpRepository } from './auth/totp/totp-repository.js';
import { TotpService } from './auth/totp/totp-service.js';
import type { Config } from './config/load-config.js';
import { answerFrameworkError, registerErrorHandler } from './http/error-handler.js';
import { OneLineRequestLog, lazyChildLogger, serviceLoggerOptions } from './http/logging.js';
import { purgeExpired } from './housekeeping/sqlite-housekeeping.js';
import { healthRoutes } from './http/health.js';
import { Metrics } from './http/metrics.js';
import { registerPolicy } from './http/policy.js';
import { registerSecurityHeaders } from './http/security-headers.js';
import { sqliteRateLimitStore } from './http/sqlite-rate-limit-store.js';
import { parseQuerystring, registerTextRules } from './http/text.js';
import { SqliteOrgRepository } from './orgs/org-repository.js';
import { OrgService } from './orgs/org-service.js';
import { orgRoutes } from './orgs/routes.js';
import { loadPlanCatalogue, type PlanCatalogue } from './plans/plans.js';
import { systemClock, type Clock } from './platform/clock.js';
import { SecretBox } from './platform/crypto/secret-box.js';
import { openSqlite, migrateSqlite, type SqliteDatabase } from './platform/db/sqlite.js';
import { AppError } from './platform/errors.js';
import { OutboxMailer, SmtpMailer, type Mailer } from './platform/mailer.js';
import { ServiceTokens } from './service-tokens/service-tokens.js';
import { staffRoutes } from './staff/routes.js';
import { SqliteStaffRepository } from './staff/staff-repository.js';
import { StaffService } from './staff/staff-service.js';
import { auditRoutes } from './audit/routes.js';
import { SqliteUserRepository } from './users/user-repository.js';
import { SqlitePrivacyRepository } from './privacy/privacy-repository.js';
import { PrivacyService } from './privacy/privacy-service.js';
import { PRIVACY_CONTRIBUTORS } from './privacy/registry.js';
import { privacyRoutes } from './privacy/routes.js';
import { SqliteDomainRepository } from './orgs/domains/domain-repository.js';
import { DomainService } from './orgs/domains/domain-service.js';
import { domainRoutes, staffDomainRoutes } from './orgs/domains/routes.js';
import { systemDnsResolver, type DnsResolver } from './platform/dns.js';
import { SqliteBreakGlassRepository } from './sso/break-glass-repository.js';
import { SqliteConnectionRepository } from './sso/connections/connection-repository.js';
import { ConnectionService } from './sso/connections/connection-service.js';
import { connectionRoutes } from './sso/connections/routes.js';
import { guardedFetch } from './sso/connections/ssrf-guard.js';
import { SsoEnforcement } from './sso/enforcement.js';
import { SqliteSsoIdentityRepository } from './sso/identity-repository.js';
import { SsoAccountLinker } from './sso/linking.js';
import { OidcRelyingParty } from './sso/oidc/oidc-client.js';
import { OidcLoginService } from './sso/oidc/oidc-login-service.js';
import { oidcRoutes } from './sso/oidc/routes.js';
import { ssoRoutes } from './sso/routes.js';
import { SqliteSsoTransactionRepository } from './sso/state/transaction-repository.js';
import { SqliteAssertionReplayCache } from './sso/saml/replay-cache.js';
import { samlRoutes } from './sso/saml/routes.js';
import { SamlLoginService } from './sso/saml/saml-login-service.js';
import { webPages } from './web/plugin.js';

/** Everything the routes and the CLI use, wired once. */
export interface Services {
  config: Readonly<Config>;
  clock: Clock;
  database: SqliteDatabase;
  audit: SqliteAuditLog;
  /** Searches (always audited) and proofs of the audit log. */
  auditService: AuditService;
  auditCheckpoints: AuditCheckpoints;
  plans: PlanCatalogue;
  secretBox: SecretBox;
  mailer: Mailer;
  hasher: PasswordHasher;
  sessions: SessionService;
  passwords: PasswordService;
  orgs: OrgService;
  users: SqliteUserRepository;
  serviceTokens: ServiceTokens;
  totp: TotpService;
  staff: StaffService;
  domains: DomainService;
  ssoConnections: ConnectionService;
  ssoLogin: OidcLoginService;
  ssoSaml: SamlLoginService;
  ssoEnforcement: SsoEnforcement;
  privacy: PrivacyService;
  metrics: Metrics;
}

export interface BuildOptions {
  clock?: Clock;
  mailer?: Mailer;
  /** DNS answers (domain TXT verification, IdP address checks); default Node's resolver. */
  dnsResolver?: DnsResolver;
  /** Fastify logger options; defaults to pino JSON at the configured level with secrets redacted. */
  logger?: FastifyServerOptions['logger'];
}

export interface ServiceLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const SILENT_LOG: ServiceLog = { info: () => {}, warn: () => {}, error: () => {} };

/** Open the database, apply migrations and wire the services (no HTTP). */
export function createServices(config: Readonly<Config>, options: BuildOptions = {}, log?: ServiceLog): Services {
  const clock = options.clock ?? systemClock;
  const database = openSqlite(config.databaseFile);
  migrateSqlite(database);
  if (!config.secretsKeys) throw new Error('SECRETS_KEY is not resolved (server.ts generates a development key)');
  const secretBox = new SecretBox(config.secretsKeys);
  // The audit chain's MAC and checkpoint keys: from AUDIT_KEY, else derived from SECRETS_KEY (audit/audit-keys.ts).
  const auditKeys = AuditKeyRing.derive(config.auditKeys ?? config.secretsKeys);
  const audit = new SqliteAuditLog(database.sqlite, clock, auditKeys);
  const auditCheckpoints = new AuditCheckpoints({ audit, keys: auditKeys, clock, dir: config.auditCheckpointDir, log: log ?? SILENT_LOG });
  // First start over a chain written before it was keyed: sign its head before anything is appended.
  auditCheckpoints.sealLegacyChain();
  const auditService = new AuditService({ database, audit, checkpoints: auditCheckpoints, keys: auditKeys });
  const plans = loadPlanCatalogue(config.plansFile);
  const mailer =
    options.mailer ??
    (config.smtpUrl ? new SmtpMailer(config.smtpUrl, config.mailFrom) : new OutboxMailer(join(config.dataDir, 'outbox'), clock, log ?? SILENT_LOG));
  const hasher = new PasswordHasher(config.argon2, config.argon2Admission);
  const users = new SqliteUserRepository(database);
  const sessions = new SessionService(new SqliteSessionRepository(database, audit, config.sessionCacheSize), clock, config.session);
  const metrics = new Metrics();
  const passwords = new PasswordService({
    users,
    repo: new SqlitePasswordRepository(database, audit),
    hasher,
    sessions,
    mailer,
    clock,
    publicUrl: config.publicUrl,
    // Called per request, after `orgs` below exists.
    passwordRules: (orgId) => orgs.passwordRules(orgId),
    onBackgroundError: (error, what) => log?.error({ err: error }, `${what} failed`),
    onLoginOutcome: (outcome) => metrics.logins.inc({ outcome }),
  });
  const orgRepository = new SqliteOrgRepository(database, audit);
  const orgs = new OrgService({
    orgs: orgRepository,
    users,
    hasher,
    sessions,
    plans,
    mailer,
    clock,
    publicUrl: config.publicUrl,
  });
  const serviceTokens = new ServiceTokens(database, audit, clock);
  const totp = new TotpService({
    repo: new SqliteTotpRepository(database, audit),
    users,
    sessions,
    secretBox,
    clock,
    mailer,
    onBackgroundError: (error, what) => log?.error({ err: error }, `${what} failed`),
  });
  // SSO (issue 4). Its login step runs before TOTP's: a second factor must not
  // turn a password login refused by enforced SSO into a session.
  const dnsResolver = options.dnsResolver ?? systemDnsResolver;
  const domains = new DomainService({ repo: new SqliteDomainRepository(database, audit), resolver: dnsResolver, clock });
  const outbound = { allowLoopback: config.dangerouslyAllowLoopbackIdp, resolver: dnsResolver, timeoutMs: 5_000, dataRegion: config.dataRegionAllowlist };
  const rp = new OidcRelyingParty({ fetch: guardedFetch(outbound), allowInsecureRequests: config.dangerouslyAllowLoopbackIdp, timeoutSeconds: 5 });
  const ssoConnections = new ConnectionService({
    repo: new SqliteConnectionRepository(database, audit),
    orgs,
    plans,
    secretBox,
    rp,
    outbound,
    domains,
    clock,
    publicUrl: config.publicUrl,
  });
  const ssoIdentities = new SqliteSsoIdentityRepository(database, audit);
  const ssoTransactions = new SqliteSsoTransactionRepository(database);
  const linker = new SsoAccountLinker({ identities: ssoIdentities, users, domains, sessions, clock });
  // SAML (issue 5): started through the same /v1/sso/start as OIDC.
  const ssoSaml = new SamlLoginService({
    connections: ssoConnections,
    transactions: ssoTransactions,
    identities: ssoIdentities,
    replay: new SqliteAssertionReplayCache(database),
    linker,
    clock,
    publicUrl: config.publicUrl,
    onLoginOutcome: (outcome) => metrics.logins.inc({ outcome }),
  });
  const ssoLogin = new OidcLoginService({
    connections: ssoConnections,
    domains,
    transactions: ssoTransactions,
    identities: ssoIdentities,
    rp,
    linker,
    clock,
    publicUrl: config.publicUrl,
    onLoginOutcome: (outcome) => metrics.logins.inc({ outcome }),
    saml: ssoSaml,
  });
  const ssoEnforcement = new SsoEnforcement({
    orgs,
    users,
    plans,
    connections: ssoConnections,
    breakGlass: new SqliteBreakGlassRepository(database, audit),
    identities: ssoIdentities,
    clock,
    publicUrl: config.publicUrl,
  });
  orgs.setSsoProbe({
    hasEnabledConnection: (orgId) => ssoConnections.hasEnabledConnection(orgId),
    ownerKeepsAWayIn: (orgId) => ssoEnforcement.ownerKeepsAWayIn(orgId),
  });
  passwords.addLoginStep(ssoEnforcement);
  passwords.addLoginStep(totp);
  passwords.setCodeVerifier(totp);
  const staff = new StaffService({
    repo: new SqliteStaffRepository(database, audit),
    orgs: orgRepository,
    plans,
    hasher,
    users,
    clock,
    grantMaxMinutes: config.staffGrantMaxMinutes,
  });
  // Privacy rights (issue 7) over every feature's contributor.
  const privacy = new PrivacyService({
    repo: new SqlitePrivacyRepository(database, audit, PRIVACY_CONTRIBUTORS),
    users,
    mailer,
    clock,
    publicUrl: config.publicUrl,
    exportsPerHour: config.exportsPerHour,
    onScrubReport: (report) => {
      if (report.kind === 'done_later') log?.info({ attempts: report.attempts }, 'erasure: the database WAL was truncated on a later attempt');
      else
        log?.error(
          { attempts: report.attempts, outcome: report.kind },
          report.kind === 'pending'
            ? 'erasure: another connection holds a database snapshot, so the WAL (which may still hold the erased data) could not be truncated yet; retrying every 30 s'
            : 'erasure: the database WAL could not be truncated for 10 minutes; the erased data leaves it at its next restart (docs/operations.md "Erasure")',
        );
    },
    onBackgroundError: (error, what) => log?.error({ err: error }, `${what} failed`),
  });
  metrics.countActiveGrantsWith(() => staff.activeGrants());
  return { config, clock, database, audit, auditService, auditCheckpoints, plans, secretBox, mailer, hasher, sessions, passwords, orgs, users, serviceTokens, totp, staff, domains, ssoConnections, ssoLogin, ssoSaml, ssoEnforcement, privacy, metrics };
}

/** Build the Fastify app over a configuration; `listen()` is the caller's (server.ts, tests). */
export async function buildApp(config: Readonly<Config>, options: BuildOptions = {}): Promise<{ app: FastifyInstance; services: Services }> {
  const requestLog = new OneLineRequestLog();
  const timeouts = config.httpTimeouts;
  // SECURITY.md "timeouts": Node's own request and header timeouts (slow
  // headers, a trickling body → 408 and the connection closed), checked
  // often enough that a short timeout is kept to within a quarter of it.
  const nodeServerOptions = {
    requestTimeout: timeouts.requestTimeoutMs,
    headersTimeout: timeouts.headersTimeoutMs,
    connectionsCheckingInterval: Math.min(1_000, Math.max(25, Math.floor(timeouts.headersTimeoutMs / 4))),
  };
  const serverOptions: FastifyServerOptions & { https?: { cert: Buffer; key: Buffer } & typeof nodeServerOptions; http?: typeof nodeServerOptions } = {
    logger: options.logger ?? serviceLoggerOptions(config.logLevel),
    // Fastify passes these on to Node (requestTimeout would otherwise be reset to 0, "none").
    requestTimeout: timeouts.requestTimeoutMs,
    keepAliveTimeout: timeouts.keepAliveTimeoutMs,
    connectionTimeout: timeouts.idleSocketTimeoutMs,
    // Performance (issue 9): request.log is made on first use (src/http/logging.ts).
    childLoggerFactory: lazyChildLogger,
    bodyLimit: config.bodyLimitBytes,
    // A hop count is accepted at run time (proxy-addr) though the types omit it.
    trustProxy: config.trustProxy as FastifyServerOptions['trustProxy'],
    genReqId: () => crypto.randomUUID(),
    // Performance (issue 9): one access-log line per request, not two.
    logController: requestLog,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
    // Query strings whose escapes are not UTF-8 are refused (src/http/text.ts).
    routerOptions: { querystringParser: parseQuerystring },
    // A path that does not decode (`%FF`) is problem+json too, not Fastify's own body.
    frameworkErrors: answerFrameworkError,
    ...(config.tls
      ? { https: { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile), ...nodeServerOptions } }
      : { http: nodeServerOptions }),
  };
  const app = Fastify(serverOptions as FastifyServerOptions).withTypeProvider<TypeBoxTypeProvider>();
  requestLog.attach(app.log, serverOptions.logger);
  // API.md "Conventions": JSON only. Fastify also parses text/plain by default,
  // which turned a wrong content type into 400 validation_failed instead of malformed_body.
  app.removeContentTypeParser('text/plain');
  // Invalid UTF-8 and unpaired surrogates are refused at the edge (issue 23 item 19).
  registerTextRules(app);

  const services = createServices(config, options, app.log);
  await services.hasher.warmUp();
  // Grants end by themselves at expiresAt; this records each end in the audit log.
  const expiry = setInterval(() => {
    services.staff.expireDue().catch((error: unknown) => app.log.error({ err: error }, 'recording staff grant expiry failed'));
  }, 60_000);
  expiry.unref();
  // Rows whose purpose has ended (expired sessions, used tokens and challenges) are deleted.
  const housekeeping = setInterval(() => {
    try {
      purgeExpired(services.database, services.clock.now());
    } catch (error) {
      app.log.error({ err: error }, 'housekeeping failed');
    }
  }, 10 * 60_000);
  housekeeping.unref();
  // Signed checkpoints of the audit chain head (audit/checkpoints.ts).
  services.auditCheckpoints.start(config.auditCheckpointIntervalMinutes);
  app.addHook('onClose', async () => {
    clearInterval(housekeeping);
    clearInterval(expiry);
    await services.auditCheckpoints.stop();
    services.database.close();
  });

  registerErrorHandler(app);
  requestLog.countWith((request, reply) => services.metrics.observe(request, reply));

  // helmet's headers and x-request-id on every response; helmet's computed once at boot (src/http/security-headers.ts).
  registerSecurityHeaders(app, {
    // Pages are served from the same origin with no inline scripts (strict CSP).
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        frameAncestors: ["'none'"],
        formAction: ["'self'"],
        // Only over https: on a plain-http development origin it would break every asset.
        upgradeInsecureRequests: config.secureCookies ? [] : null,
      },
    },
    hsts: config.secureCookies ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    // `no-referrer` would make browsers send `Origin: null` on same-origin form posts,
    // which the CSRF Origin check must refuse; `same-origin` still sends nothing cross-site.
    referrerPolicy: { policy: 'same-origin' },
  });
  await app.register(cookie);
  await app.register(rateLimit, {
    global: false,
    store: sqliteRateLimitStore(services.database.sqlite, services.clock),
    keyGenerator: (request) => `ip:${request.ip}`,
    errorResponseBuilder: (_request, context) => {
      const seconds = Math.max(1, Math.ceil(context.ttl / 1000));
      return new AppError('rate_limited', { extra: { retryAfter: seconds }, headers: { 'retry-after': String(seconds) } });
    },
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Cleverom Identity', version: '1.0.0', description: 'Authentication and access control for Cleverom.' },
      components: {
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: 'cleverom_session' },
          bearer: { type: 'http', scheme: 'bearer' },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });

  registerPolicy(app, {
    sessions: services.sessions,
    serviceTokens: services.serviceTokens,
    plans: services.plans,
    cookies: { secure: config.secureCookies },
    publicOrigin: config.publicOrigin,
    staffMember: (userId) => services.staff.member(userId),
  });

  await app.register(async (scope) => {
    healthRoutes(scope, services);
    sessionRoutes(scope, services);
    passwordRoutes(scope, services);
    orgRoutes(scope, services);
    totpRoutes(scope, services);
    staffRoutes(scope, services);
    auditRoutes(scope, services);
    privacyRoutes(scope, services);
    domainRoutes(scope, services);
    staffDomainRoutes(scope, services);
    connectionRoutes(scope, services);
    ssoRoutes(scope, services);
    oidcRoutes(scope, services);
    samlRoutes(scope, services);
  });
  // Server-rendered pages for people (src/web): their own body parser, CSRF tokens and HTML errors.
  await app.register(webPages(services));

  return { app, services };
}
