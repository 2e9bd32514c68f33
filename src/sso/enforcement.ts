import type { RequestContext } from '../audit/events.js';
import type { LoginResult, LoginStep } from '../auth/password/password-service.js';
import { emailDomain } from '../orgs/domains/domain-service.js';
import type { Org } from '../orgs/org.js';
import type { SsoOwnerAccessProbe } from '../orgs/org-service.js';
import type { PlanCatalogue } from '../plans/plans.js';
import type { Clock } from '../platform/clock.js';
import { AppError, validationFailed } from '../platform/errors.js';
import type { User } from '../users/user.js';
import type { UserRepository } from '../users/user-repository.js';
import type { BreakGlassRepository } from './break-glass-repository.js';
import type { ConnectionService } from './connections/connection-service.js';
import type { SsoIdentityRepository } from './identity-repository.js';

/** Why the last break-glass flag stays while SSO is enforced (409), naming the fix. */
const LAST_WAY_IN =
  'Removing this break-glass owner would lock every owner out while single sign-on is enforced: no other owner is break-glass and none has signed in through single sign-on. ' +
  'Make another owner a break-glass owner or sign in once through SSO first.';

export interface BreakGlassView {
  userId: string;
  createdAt: string;
}

/**
 * Enforced SSO (org setting `enforceSso`, feature `sso`): after a correct
 * password, members of such an organization are sent to their IdP
 * (`403 sso_required {ssoUrl}`) instead of getting a session.
 *
 * - Owners flagged as break-glass accounts keep password login (for the
 *   day the IdP is down); every such login is audited (`sso.break_glass.used`).
 * - Never a lock-out: without an enabled connection, or once the plan lost
 *   `sso` (downgrade), enforcement is inactive and passwords work again.
 * - It runs before the TOTP step, so a second factor cannot turn a refused
 *   password login into a session.
 * - An owner always keeps a way in: enforcement is not turned on, and the
 *   last break-glass flag is not removed while it is on, unless an active
 *   owner is break-glass or has signed in through an enabled connection
 *   ({@link ownerKeepsAWayIn}).
 */
export class SsoEnforcement implements LoginStep, SsoOwnerAccessProbe {
  constructor(
    private readonly deps: {
      orgs: { get(orgId: string): Promise<Org> };
      users: UserRepository;
      plans: PlanCatalogue;
      connections: ConnectionService;
      breakGlass: BreakGlassRepository;
      identities: SsoIdentityRepository;
      clock: Clock;
      publicUrl: URL;
    },
  ) {}

  async afterPassword(input: { user: User; context: RequestContext }): Promise<LoginResult | null> {
    const { user } = input;
    if (user.orgId === null) return null;
    const org = await this.deps.orgs.get(user.orgId).catch(() => null);
    if (!org?.settings.enforceSso || !this.deps.plans.has(org.plan, 'sso')) return null;
    const enabled = await this.deps.connections.enabledConnections(org.id);
    if (enabled.length === 0) return null;
    if (user.role === 'owner' && (await this.deps.breakGlass.isFlagged(user.id, org.id))) {
      await this.deps.identities.record({
        action: 'sso.break_glass.used',
        actor: { type: 'user', id: user.id },
        orgId: org.id,
        subjectId: user.id,
        data: { method: 'password' },
        pii: { userId: user.id, ...input.context },
      });
      return null;
    }
    const domain = emailDomain(user.email);
    const chosen = enabled.find((c) => domain !== null && c.domains.includes(domain)) ?? enabled[0];
    const ssoUrl = new URL('/v1/sso/start', this.deps.publicUrl);
    if (chosen) ssoUrl.searchParams.set('connectionId', chosen.id);
    return { kind: 'sso_required', ssoUrl: ssoUrl.href };
  }

  /**
   * Whether an active owner of `orgId` can still get in while SSO is
   * enforced: by password as a break-glass owner, or through SSO because
   * she has an identity on one of the organization's enabled connections
   * (identities are made only by signing in; a known identity signs in
   * whatever its email domain). `ignoringBreakGlassOf`: as if that owner's
   * flag were already removed.
   */
  async ownerKeepsAWayIn(orgId: string, options: { ignoringBreakGlassOf?: string } = {}): Promise<boolean> {
    const owners = (await this.deps.users.listByOrg(orgId)).filter((u) => u.role === 'owner' && u.status === 'active');
    const flagged = new Set((await this.deps.breakGlass.list(orgId)).map((a) => a.userId));
    if (owners.some((o) => flagged.has(o.id) && o.id !== options.ignoringBreakGlassOf)) return true;
    const enabled = await this.deps.connections.enabledConnections(orgId);
    for (const owner of owners) {
      for (const connection of enabled) if (await this.deps.identities.hasIdentityOn(connection.id, owner.id)) return true;
    }
    return false;
  }

  async listBreakGlass(orgId: string): Promise<BreakGlassView[]> {
    return (await this.deps.breakGlass.list(orgId)).map((a) => ({ userId: a.userId, createdAt: a.createdAt.toISOString() }));
  }

  /** Flag (or unflag) an owner of `org` as a break-glass account. Only owners decide this. */
  async setBreakGlass(org: Org, actor: User, userId: string, flagged: boolean, context: RequestContext): Promise<void> {
    const target = await this.deps.users.byId(userId);
    if (!target || target.orgId !== org.id) throw new AppError('not_found');
    if (flagged && target.role !== 'owner') throw validationFailed([{ field: 'userId', message: 'only owners can be break-glass accounts' }]);
    // The same rule as turning enforcement on: removing the last way in while it is in force is refused.
    const enforced = org.settings.enforceSso && this.deps.plans.has(org.plan, 'sso');
    if (!flagged && enforced && !(await this.ownerKeepsAWayIn(org.id, { ignoringBreakGlassOf: userId }))) {
      throw new AppError('conflict', { publicDetail: LAST_WAY_IN });
    }
    await this.deps.breakGlass.set({ userId, orgId: org.id, createdBy: actor.id, createdAt: this.deps.clock.now() }, flagged, {
      action: flagged ? 'sso.break_glass.granted' : 'sso.break_glass.revoked',
      actor: { type: 'user', id: actor.id },
      orgId: org.id,
      subjectId: userId,
      data: {},
      pii: { userId: actor.id, ...context },
    });
  }
}
