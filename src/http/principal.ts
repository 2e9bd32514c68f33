import type { RequestContext } from '../audit/events.js';
import type { Session } from '../auth/session/session.js';
import type { Org } from '../orgs/org.js';
import type { Feature } from '../plans/plans.js';
import type { ServiceScope, ServiceToken } from '../service-tokens/service-tokens.js';
import type { StaffMember } from '../staff/staff.js';
import type { OrgRole, User } from '../users/user.js';

/** Who is calling: a person with a session, or a machine with a service token. */
export type Principal =
  | { kind: 'user'; via: 'cookie' | 'bearer'; session: Session; user: User; org: Org | null }
  | { kind: 'service'; token: ServiceToken };

export type UserPrincipal = Extract<Principal, { kind: 'user' }>;

/**
 * Declarative route gates (DESIGN.md rule 8), enforced by one hook in
 * `policy.ts` and validated at boot.
 */
export interface RoutePolicy {
  /** `user`: a session; `service`: a service token with `scope`; absent: public. */
  auth?: 'user' | 'service';
  scope?: ServiceScope;
  /** Minimum organization role for `:orgId` routes (owner > admin > member). */
  role?: OrgRole;
  /** Plan feature the organization (`:orgId` or the caller's) must have. */
  feature?: Feature;
  /** Minimum authenticator assurance level of the session. */
  aal?: 1 | 2;
  /**
   * The session must have authenticated within the last 10 minutes:
   * `true` by any means (login, password or code reauthentication);
   * `'second_factor'` with a second factor (an AAL2 login or a
   * reauthentication with a code), not a password alone.
   */
  fresh?: true | 'second_factor';
  /**
   * Reachable by a session that must still enrol a second factor (its
   * organization requires MFA): enrolment, `GET /v1/me`, logout.
   */
  duringMfaEnrolment?: boolean;
  /**
   * Cleverom staff only (`any` staff role, or `security_admin`). Staff routes
   * always need AAL2 and a staff-length session (≤ 12 h, 15 min idle).
   */
  staff?: 'any' | 'security_admin';
  /**
   * A public POST that another site's page submits on purpose: the SAML ACS,
   * which an IdP's auto-submitted form reaches with the IdP's Origin (or
   * `null`) and without our SameSite=Lax cookies. No principal is resolved
   * and the Origin check (ASVS 3.5) is skipped, so the route must
   * authenticate the message itself (SAML: signature, single-use
   * InResponseTo, assertion replay cache) and must not act on a session.
   * Only for public POST routes; refused at boot elsewhere.
   */
  crossSitePost?: boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig extends RoutePolicy {}
  interface FastifyRequest {
    principal: Principal | null;
    requestContext: RequestContext;
    /** Set on `staff` routes after the gate. */
    staffMember: StaffMember | null;
  }
}
