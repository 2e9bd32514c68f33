import type { RequestContext } from '../audit/events.js';
import type { LoginResult, LoginStep } from '../auth/password/password-service.js';
import { emailDomain } from '../orgs/domains/domain-service.js';
import type { Org } from '../orgs/org.js';
import type { PlanCatalogue } from '../plans/plans.js';
import type { Clock } from '../platform/clock.js';
import { AppError, validationFailed } from '../platform/errors.js';
import type { User } from '../users/user.js';
import type { UserRepository } from '../users/user-repository.js';
import type { BreakGlassRepository } from './break-glass-repository.js';
import type { ConnectionService } from './connections/connection-service.js';
import type { SsoIdentityRepository } from './identity-repository.js';

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
 */
export class SsoEnforcement implements LoginStep {
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

  async listBreakGlass(orgId: string): Promise<BreakGlassView[]> {
    return (await this.deps.breakGlass.list(orgId)).map((a) => ({ userId: a.userId, createdAt: a.createdAt.toISOString() }));
  }

  /** Flag (or unflag) an owner of `org` as a break-glass account. Only owners decide this. */
  async setBreakGlass(org: Org, actor: User, userId: string, flagged: boolean, context: RequestContext): Promise<void> {
    const target = await this.deps.users.byId(userId);
    if (!target || target.orgId !== org.id) throw new AppError('not_found');
    if (flagged && target.role !== 'owner') throw validationFailed([{ field: 'userId', message: 'only owners can be break-glass accounts' }]);
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
