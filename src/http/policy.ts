import type { FastifyInstance, FastifyRequest, onRequestHookHandler, RouteOptions } from 'fastify';
import type { SessionService } from '../auth/session/session-service.js';
import { FEATURES, type Feature, type PlanCatalogue } from '../plans/plans.js';
import { AppError } from '../platform/errors.js';
import { SERVICE_SCOPES, looksLikeServiceToken, type ServiceTokens } from '../service-tokens/service-tokens.js';
import { STAFF_SESSION_POLICY } from '../auth/session/session-service.js';
import type { StaffMember } from '../staff/staff.js';
import { ORG_ROLES, type OrgRole } from '../users/user.js';
import { sessionCookieOf, type CookieSettings } from './cookies.js';
import type { Principal, RoutePolicy, UserPrincipal } from './principal.js';

export interface PolicyDeps {
  sessions: SessionService;
  serviceTokens: ServiceTokens;
  plans: PlanCatalogue;
  cookies: CookieSettings;
  publicOrigin: string;
  staffMember(userId: string): Promise<StaffMember | null>;
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const ROLE_RANK: Record<OrgRole, number> = { member: 1, admin: 2, owner: 3 };

/**
 * One `onRoute` hook turns each route's `config` into an `onRequest` gate
 * (DESIGN.md rule 8) and throws at boot on unknown values.
 */
export function registerPolicy(app: FastifyInstance, deps: PolicyDeps): void {
  app.decorateRequest('principal', null);
  app.decorateRequest('staffMember', null);
  app.decorateRequest('requestContext', null as never);

  // Synchronous (callback) hook: no promise per request on the hot path (issue 9).
  app.addHook('onRequest', (request, _reply, done) => {
    request.requestContext = { ip: request.ip, userAgent: request.headers['user-agent']?.slice(0, 512) ?? null };
    done();
  });

  app.addHook('onRoute', (route: RouteOptions) => {
    const policy = (route.config ?? {}) as RoutePolicy;
    validatePolicy(route, policy);
    const gate = makeGate(policy, deps);
    route.onRequest = route.onRequest === undefined ? [gate] : [...(Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest]), gate];
  });
}

function validatePolicy(route: RouteOptions, policy: RoutePolicy): void {
  const where = `${String(route.method)} ${route.url}`;
  if (policy.auth !== undefined && policy.auth !== 'user' && policy.auth !== 'service') throw new Error(`${where}: unknown auth ${String(policy.auth)}`);
  if (policy.scope !== undefined && !(SERVICE_SCOPES as readonly string[]).includes(policy.scope)) throw new Error(`${where}: unknown scope ${policy.scope}`);
  if (policy.auth === 'service' && policy.scope === undefined) throw new Error(`${where}: service routes need a scope`);
  if (policy.role !== undefined && !(ORG_ROLES as readonly string[]).includes(policy.role)) throw new Error(`${where}: unknown role ${policy.role}`);
  if (policy.feature !== undefined && !(FEATURES as readonly string[]).includes(policy.feature)) throw new Error(`${where}: unknown feature ${policy.feature}`);
  if (policy.aal !== undefined && policy.aal !== 1 && policy.aal !== 2) throw new Error(`${where}: aal must be 1 or 2`);
  if (policy.fresh !== undefined && policy.fresh !== true && policy.fresh !== 'second_factor') throw new Error(`${where}: fresh must be true or 'second_factor'`);
  if (policy.staff !== undefined && policy.staff !== 'any' && policy.staff !== 'security_admin') throw new Error(`${where}: unknown staff role ${String(policy.staff)}`);
  if (policy.staff !== undefined && policy.role !== undefined) throw new Error(`${where}: staff routes take no organization role`);
  const needsUser =
    policy.role !== undefined || policy.aal !== undefined || policy.fresh !== undefined || policy.duringMfaEnrolment === true || policy.staff !== undefined;
  if (needsUser && policy.auth !== 'user') throw new Error(`${where}: role/aal/fresh need auth: 'user'`);
  if (policy.role !== undefined && !route.url.includes(':orgId')) throw new Error(`${where}: role gates need an :orgId route`);
  if (policy.crossSitePost !== undefined) {
    if (policy.crossSitePost !== true) throw new Error(`${where}: crossSitePost must be true or absent`);
    if (route.method !== 'POST') throw new Error(`${where}: crossSitePost is for POST routes only`);
    if (policy.auth !== undefined || policy.feature !== undefined) throw new Error(`${where}: crossSitePost routes are public (no auth, role or feature)`);
  }
}

function makeGate(policy: RoutePolicy, deps: PolicyDeps): onRequestHookHandler {
  async function checkAsync(request: FastifyRequest): Promise<void> {
    // Public routes (login, sign-up) ignore a stale or malformed credential.
    const principal = policy.auth === undefined ? await resolvePrincipal(request, deps).catch(() => null) : await resolvePrincipal(request, deps);
    request.principal = principal;
    checkOrigin(request, principal, deps);

    if (policy.auth === 'service') {
      if (principal?.kind !== 'service') throw new AppError('unauthenticated');
      if (policy.scope && !principal.token.scopes.includes(policy.scope)) {
        throw new AppError('forbidden', { publicDetail: `The service token lacks the ${policy.scope} scope.` });
      }
      return;
    }
    if (policy.auth !== 'user') return;
    if (principal?.kind !== 'user') throw new AppError('unauthenticated');

    if (policy.staff !== undefined) {
      await requireStaff(request, principal, policy.staff, deps);
      requireFresh(principal, policy, deps);
      return;
    }
    checkUser(request, principal, policy, deps);
  }

  /**
   * The common case, a cookie session the repository remembers, decided
   * without a promise (issue 9), with the same checks in the same order as
   * checkAsync: undefined when it needs the database (then checkAsync
   * decides), null when the request may go on, else the refusal.
   */
  function checkRemembered(request: FastifyRequest): unknown {
    if (policy.auth !== 'user' || policy.staff !== undefined) return undefined;
    try {
      const principal = rememberedPrincipal(request, deps);
      if (principal === undefined) return undefined;
      request.principal = principal;
      checkOrigin(request, principal, deps);
      if (principal?.kind !== 'user') throw new AppError('unauthenticated');
      checkUser(request, principal, policy, deps);
      return null;
    } catch (refusal) {
      return refusal;
    }
  }

  return function gate(request, _reply, done) {
    if (policy.auth === undefined && !STATE_CHANGING.has(request.method)) return done();
    // A public cross-site POST (SAML ACS): no session is read, so none can be ridden (see RoutePolicy.crossSitePost).
    if (policy.crossSitePost === true) return done();
    const decided = checkRemembered(request);
    if (decided === null) return done();
    if (decided !== undefined) return done(decided as Error);
    checkAsync(request).then(() => done(), done);
  };
}

/**
 * ASVS 3.5: a cookie-authenticated state change must come from our origin.
 * Unauthenticated form posts (login, sign-up) are checked too when the
 * browser sends an Origin, against login CSRF.
 */
function checkOrigin(request: FastifyRequest, principal: Principal | null, deps: PolicyDeps): void {
  if (!STATE_CHANGING.has(request.method)) return;
  const origin = request.headers.origin;
  const cookieAuth = principal?.kind === 'user' && principal.via === 'cookie';
  if ((cookieAuth && origin !== deps.publicOrigin) || (origin !== undefined && origin !== deps.publicOrigin)) {
    throw new AppError('csrf_failed');
  }
}

/** The checks of a user route (not a staff one), once the principal is a user. */
function checkUser(request: FastifyRequest, principal: UserPrincipal, policy: RoutePolicy, deps: PolicyDeps): void {
  const orgId = (request.params as { orgId?: string } | undefined)?.orgId;
  if (orgId !== undefined) {
    // Tenant isolation: another organization's resources do not exist for you (404, never 403).
    if (principal.user.orgId !== orgId) throw new AppError('not_found');
    if (policy.role && ROLE_RANK[principal.user.role ?? 'member'] < ROLE_RANK[policy.role]) {
      throw new AppError('forbidden', { publicDetail: `This needs the ${policy.role} role.` });
    }
  }
  if (!policy.duringMfaEnrolment && mustEnrolSecondFactor(principal, deps.plans)) {
    throw new AppError('forbidden', {
      publicDetail: 'Your organization requires two-factor authentication. Set it up first: POST /v1/me/mfa/totp.',
      extra: { reason: 'mfa_enrolment_required' },
    });
  }
  if (policy.feature) requireFeature(principal, policy.feature, deps.plans);
  if (policy.aal === 2 && principal.session.aal < 2) {
    throw new AppError('forbidden', { publicDetail: 'This needs a session with two-factor authentication.' });
  }
  requireFresh(principal, policy, deps);
}

/**
 * Sensitive actions need an authentication within the last 10 minutes
 * (SECURITY.md "session lifetime"); staff requests and decisions need a
 * second factor within them (SECURITY.md "staff"; issue 23 item 5).
 */
function requireFresh(principal: UserPrincipal, policy: RoutePolicy, deps: PolicyDeps): void {
  if (policy.fresh === undefined) return;
  const level = policy.fresh === 'second_factor' ? 'second_factor' : 'any';
  if (deps.sessions.isRecentlyAuthenticated(principal.session, level)) return;
  throw new AppError(
    'reauthentication_required',
    level === 'second_factor'
      ? {
          publicDetail: 'Confirm it is you with a code from your authenticator app (POST /v1/me/reauthenticate {code}); a password alone is not enough here.',
          extra: { reason: 'second_factor_required' },
        }
      : {},
  );
}

/**
 * A password session below AAL2 in an organization that requires MFA (and
 * still has the feature) may only enrol. SSO sessions are exempt: their
 * second factor is the IdP's.
 */
function mustEnrolSecondFactor(principal: UserPrincipal, plans: PlanCatalogue): boolean {
  const org = principal.org;
  if (!org?.settings.requireMfa || !plans.has(org.plan, 'mfa_totp')) return false;
  if (principal.session.authMethod === 'oidc' || principal.session.authMethod === 'saml') return false;
  return principal.session.aal < 2;
}

/**
 * Staff routes (SECURITY.md: staff): a staff principal, AAL2, a staff-length
 * session; `security_admin` routes need that role.
 */
async function requireStaff(request: FastifyRequest, principal: UserPrincipal, level: 'any' | 'security_admin', deps: PolicyDeps): Promise<void> {
  const member = principal.user.orgId === null ? await deps.staffMember(principal.user.id) : null;
  if (!member) throw new AppError('forbidden', { publicDetail: 'This is for Cleverom staff.' });
  if (principal.session.aal < 2) {
    throw new AppError('forbidden', { publicDetail: 'Staff routes need two-factor authentication: enrol TOTP, then log in with it.', extra: { reason: 'aal2_required' } });
  }
  const lifetime = principal.session.expiresAt.getTime() - principal.session.createdAt.getTime();
  if (lifetime > STAFF_SESSION_POLICY.absoluteHours * 3_600_000 || principal.session.idleTimeoutMs > STAFF_SESSION_POLICY.idleMinutes * 60_000) {
    throw new AppError('unauthenticated', { publicDetail: 'Log in again.' });
  }
  if (level === 'security_admin' && member.role !== 'security_admin') {
    throw new AppError('forbidden', { publicDetail: 'This needs the security_admin staff role.' });
  }
  request.staffMember = member;
}

function requireFeature(principal: UserPrincipal, feature: Feature, plans: PlanCatalogue): void {
  const org = principal.org;
  // Staff have no organization; they must still enrol TOTP (staff routes need AAL2).
  if (!org && principal.user.orgId === null && feature === 'mfa_totp') return;
  if (!org || !plans.has(org.plan, feature)) {
    throw new AppError('plan_required', { extra: { feature, requiredPlan: plans.requiredPlanFor(feature) } });
  }
}

/**
 * `resolvePrincipal`'s answer when it needs no I/O: the cookie session the
 * repository remembers, or nobody (no cookie, or a refused session).
 * undefined: ask `resolvePrincipal`. Bearer credentials always go there.
 */
function rememberedPrincipal(request: FastifyRequest, deps: PolicyDeps): Principal | null | undefined {
  if (request.headers.authorization !== undefined) return undefined;
  const cookie = sessionCookieOf(request, deps.cookies);
  if (cookie === undefined) return null;
  const found = deps.sessions.validateNow(cookie);
  if (found === undefined) return undefined;
  return found ? { kind: 'user', via: 'cookie', ...found } : null;
}

/** Cookie session, bearer session token, or bearer service token — or nobody. */
async function resolvePrincipal(request: FastifyRequest, deps: PolicyDeps): Promise<Principal | null> {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer ([A-Za-z0-9_\-.~+/]+=*)$/.exec(authorization);
    if (!match?.[1]) throw new AppError('unauthenticated', { publicDetail: 'Malformed Authorization header.' });
    const bearer = match[1];
    if (looksLikeServiceToken(bearer)) {
      const token = await deps.serviceTokens.verify(bearer);
      if (!token) throw new AppError('unauthenticated');
      return { kind: 'service', token };
    }
    const found = await deps.sessions.validate(bearer);
    if (!found) throw new AppError('unauthenticated');
    return { kind: 'user', via: 'bearer', ...found };
  }
  const cookie = sessionCookieOf(request, deps.cookies);
  if (cookie === undefined) return null;
  const found = await deps.sessions.validate(cookie);
  return found ? { kind: 'user', via: 'cookie', ...found } : null;
}

/** The calling user, for routes whose policy already guaranteed one. */
export function userOf(request: FastifyRequest): UserPrincipal {
  const principal = request.principal;
  if (principal?.kind !== 'user') throw new AppError('unauthenticated');
  return principal;
}
