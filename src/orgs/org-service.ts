import type { RequestContext } from '../audit/events.js';
import type { AuditActor, AuditEventInput } from '../audit/events.js';
import type { PasswordHasher } from '../auth/password/hasher.js';
import { PASSWORD_MIN_LENGTH, checkPassword, minimumLengthFor, normalizePassword } from '../auth/password/policy.js';
import type { SessionService } from '../auth/session/session-service.js';
import type { NewSession } from '../auth/session/session.js';
import { isPlan, type Feature, type Plan, type PlanCatalogue } from '../plans/plans.js';
import { DAY_MS } from '../platform/clock.js';
import type { Clock } from '../platform/clock.js';
import { hashToken, randomToken } from '../platform/crypto/tokens.js';
import { AppError, validationFailed } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import type { Mailer } from '../platform/mailer.js';
import { normalizeEmail, type OrgRole, type User } from '../users/user.js';
import type { UserRepository } from '../users/user-repository.js';
import { slugify, type Org, type OrgSettings } from './org.js';
import type { OrgRepository, PendingInvitation } from './org-repository.js';

const INVITATION_TTL_MS = 7 * DAY_MS;

export interface OrgView {
  id: string;
  name: string;
  slug: string;
  plan: Plan;
  features: Feature[];
  settings: OrgSettings;
  createdAt: string;
}

export interface MemberView {
  id: string;
  email: string;
  name: string;
  role: OrgRole;
  status: string;
  createdAt: string;
}

/** Answers whether an organization has an enabled SSO connection (the SSO feature plugs in here). */
export interface SsoConnectionProbe {
  hasEnabledConnection(orgId: string): Promise<boolean>;
}

/**
 * Answers whether an owner of the organization still gets in once SSO is
 * enforced: a break-glass owner, or one who has signed in through an
 * enabled connection (the SSO feature plugs in here).
 */
export interface SsoOwnerAccessProbe {
  ownerKeepsAWayIn(orgId: string): Promise<boolean>;
}

/** What turning `enforceSso` on is refused without (409), in words that name the fix. */
export const ENFORCE_SSO_LOCKOUT =
  'Enforcing single sign-on now would lock every owner out: no owner is a break-glass owner and none has signed in through single sign-on. ' +
  'Make an owner a break-glass owner or sign in once through SSO, then turn it on.';

export class OrgService {
  private ssoProbe: SsoConnectionProbe & SsoOwnerAccessProbe = { hasEnabledConnection: async () => false, ownerKeepsAWayIn: async () => false };

  constructor(
    private readonly deps: {
      orgs: OrgRepository;
      users: UserRepository;
      hasher: PasswordHasher;
      sessions: SessionService;
      plans: PlanCatalogue;
      mailer: Mailer;
      clock: Clock;
      publicUrl: URL;
    },
  ) {}

  setSsoProbe(probe: SsoConnectionProbe & SsoOwnerAccessProbe): void {
    this.ssoProbe = probe;
  }

  view(org: Org): OrgView {
    return {
      id: org.id,
      name: org.name,
      slug: org.slug,
      plan: org.plan,
      features: this.deps.plans.featuresOf(org.plan),
      settings: org.settings,
      createdAt: org.createdAt.toISOString(),
    };
  }

  async get(orgId: string): Promise<Org> {
    const org = await this.deps.orgs.byId(orgId);
    if (!org) throw new AppError('not_found');
    return org;
  }

  /** `POST /v1/signup`: a new organization on `free` with the caller as owner, and a session. */
  async signup(input: {
    orgName: string;
    name: string;
    email: string;
    password: string;
    ageConfirmed: boolean;
    context: RequestContext;
  }): Promise<{ user: User; org: Org; session: NewSession }> {
    // No service to people under 16: only the attestation and its time are kept.
    if (input.ageConfirmed !== true) throw new AppError('age_restricted');
    const email = normalizeEmail(input.email);
    const password = normalizePassword(input.password);
    // Context words (NIST SP 800-63B-4 §3.1.1.2): the email, the person's and the organization's names.
    const problem = checkPassword({ password, field: 'password', context: [email, input.name, input.orgName] });
    if (problem) throw validationFailed([problem]);
    const passwordHash = await this.deps.hasher.hash(password);
    const result = await this.createOrgWithOwner({
      orgName: input.orgName,
      plan: 'free',
      owner: { name: input.name, email, passwordHash, ageConfirmed: true },
      actor: null,
      context: input.context,
      withSession: true,
    });
    if (!result.session) throw new Error('sign-up must issue a session');
    return { user: result.user, org: result.org, session: result.session };
  }

  /** Used by sign-up and by the CLI `org:create`. */
  async createOrgWithOwner(input: {
    orgName: string;
    plan: Plan;
    owner: { name: string; email: string; passwordHash: string | null; ageConfirmed: boolean };
    actor: AuditActor | null;
    context: RequestContext;
    withSession: boolean;
  }): Promise<{ user: User; org: Org; session: NewSession | null }> {
    const now = this.deps.clock.now();
    const orgId = newId();
    const userId = newId();
    const slug = await this.uniqueSlug(input.orgName);
    const session = input.withSession
      ? this.deps.sessions.mint({ userId, aal: 1, authMethod: 'signup', context: input.context })
      : null;
    const actor: AuditActor = input.actor ?? { type: 'user', id: userId };
    const outcome = await this.deps.orgs.createWithOwner({
      org: { id: orgId, name: input.orgName, slug, plan: input.plan, createdAt: now },
      owner: {
        id: userId,
        email: input.owner.email,
        name: input.owner.name,
        passwordHash: input.owner.passwordHash,
        orgId,
        role: 'owner',
        ageConfirmedAt: input.owner.ageConfirmed ? now : null,
        createdAt: now,
      },
      session,
      events: (id): AuditEventInput[] => [
        { action: 'org.created', actor, orgId: id, subjectId: id, data: { plan: input.plan } },
        {
          action: 'user.signup',
          actor,
          orgId: id,
          subjectId: userId,
          data: { role: 'owner', sessionId: session?.session.id ?? null },
          pii: { userId, ...input.context },
        },
      ],
    });
    if (outcome.kind === 'email_taken') {
      throw new AppError('conflict', { publicDetail: 'An account with this email already exists.' });
    }
    const [user, org] = await Promise.all([this.deps.users.byId(userId), this.deps.orgs.byId(orgId)]);
    if (!user || !org) throw new Error('created organization vanished');
    return { user, org, session };
  }

  private async uniqueSlug(name: string): Promise<string> {
    const base = slugify(name);
    if (!(await this.deps.orgs.slugTaken(base))) return base;
    for (;;) {
      const candidate = `${base}-${randomToken(3).toLowerCase().replace(/[^a-z0-9]/g, 'x')}`;
      if (!(await this.deps.orgs.slugTaken(candidate))) return candidate;
    }
  }

  async update(org: Org, actor: User, changes: { name?: string; settings?: Partial<OrgSettings> }, context: RequestContext): Promise<Org> {
    const settings: OrgSettings = { ...org.settings, ...changes.settings };
    // Turning a setting on needs its feature; turning it off never does (downgrades never lock anyone in).
    const gates: [keyof OrgSettings, Feature][] = [
      ['requireMfa', 'mfa_totp'],
      ['enforceSso', 'sso'],
      ['requireCustomerApproval', 'access_approval'],
    ];
    for (const [setting, feature] of gates) {
      if (changes.settings?.[setting] === true && !org.settings[setting] && !this.deps.plans.has(org.plan, feature)) {
        throw this.planRequired(feature);
      }
    }
    if (settings.passwordMinLength < PASSWORD_MIN_LENGTH && changes.settings?.passwordMinLength !== undefined) {
      // A shorter minimum is only for organizations that require a second factor.
      if (!this.deps.plans.has(org.plan, 'mfa_totp')) throw this.planRequired('mfa_totp');
      if (!settings.requireMfa) {
        throw validationFailed([{ field: 'settings.passwordMinLength', message: 'below 15 needs settings.requireMfa' }]);
      }
    }
    if (changes.settings?.enforceSso === true && !org.settings.enforceSso) {
      if (!(await this.ssoProbe.hasEnabledConnection(org.id))) {
        throw validationFailed([{ field: 'settings.enforceSso', message: 'needs an enabled SSO connection with a verified domain' }]);
      }
      // Never a lock-out (API.md, docs/threat-model.md "enforced SSO"): enforcement
      // takes password login from every owner who is not break-glass, so at least
      // one owner must keep a way in. Check-then-write, not one transaction: the
      // probe reads SSO tables this repository does not own. The window is an
      // owner revoking the last break-glass flag at the same moment (that path
      // checks the same rule); the storage refactor's shared transaction closes it.
      if (!(await this.ssoProbe.ownerKeepsAWayIn(org.id))) throw new AppError('conflict', { publicDetail: ENFORCE_SSO_LOCKOUT });
    }
    const changed = {
      ...(changes.name !== undefined ? { name: changes.name } : {}),
      ...(changes.settings !== undefined ? { settings } : {}),
    };
    await this.deps.orgs.update(org.id, changed, this.deps.clock.now(), {
      action: 'org.updated',
      actor: { type: 'user', id: actor.id },
      orgId: org.id,
      subjectId: org.id,
      data: { ...(changes.name !== undefined ? { nameChanged: true } : {}), ...(changes.settings ? { settings: { ...changes.settings } } : {}) },
      pii: { userId: actor.id, ...context },
    });
    return this.get(org.id);
  }

  /**
   * What a new password of a member of `orgId` is checked against: the
   * minimum length (15, or the MFA org's lower setting) and the
   * organization's name as a context word (NIST SP 800-63B-4 §3.1.1.2).
   */
  async passwordRules(orgId: string | null): Promise<{ minLength: number; orgName: string | null }> {
    const org = orgId === null ? null : await this.deps.orgs.byId(orgId);
    return {
      minLength: minimumLengthFor(org ? { ...org.settings, mfaAvailable: this.deps.plans.has(org.plan, 'mfa_totp') } : null),
      orgName: org?.name ?? null,
    };
  }

  planRequired(feature: Feature): AppError {
    return new AppError('plan_required', { extra: { feature, requiredPlan: this.deps.plans.requiredPlanFor(feature) } });
  }

  async setPlan(orgId: string, planInput: string, actor: AuditActor): Promise<Org> {
    if (!isPlan(planInput)) throw validationFailed([{ field: 'plan', message: 'must be free, pro or enterprise' }]);
    const org = await this.get(orgId);
    await this.deps.orgs.setPlan(orgId, planInput, this.deps.clock.now(), {
      action: 'org.plan_changed',
      actor,
      orgId,
      subjectId: orgId,
      data: { from: org.plan, to: planInput },
    });
    return this.get(orgId);
  }

  async listMembers(orgId: string): Promise<MemberView[]> {
    const members = await this.deps.users.listByOrg(orgId);
    return members.map((m) => ({
      id: m.id,
      email: m.email,
      name: m.name,
      role: m.role ?? 'member',
      status: m.status,
      createdAt: m.createdAt.toISOString(),
    }));
  }

  /** Invitations still waiting to be accepted (the admin page lists them). */
  pendingInvitations(orgId: string): Promise<PendingInvitation[]> {
    return this.deps.orgs.pendingInvitations(orgId, this.deps.clock.now());
  }

  /** A member of `orgId`, or `404` (never reveal members of another tenant). */
  async member(orgId: string, userId: string): Promise<User> {
    const user = await this.deps.users.byId(userId);
    if (!user || user.orgId !== orgId) throw new AppError('not_found');
    return user;
  }

  /** Only owners grant or take away ownership, or change an owner. */
  async changeRole(orgId: string, actor: User, userId: string, role: OrgRole, context: RequestContext): Promise<MemberView> {
    const target = await this.member(orgId, userId);
    if (actor.role !== 'owner' && (role === 'owner' || target.role === 'owner')) {
      throw new AppError('forbidden', { publicDetail: 'Only an owner can change ownership.' });
    }
    const result = await this.deps.orgs.changeRole(orgId, userId, role, this.deps.clock.now(), {
      action: 'member.role_changed',
      actor: { type: 'user', id: actor.id },
      orgId,
      subjectId: userId,
      data: { from: target.role ?? 'member', to: role },
      pii: { userId: actor.id, ...context },
    });
    if (result === 'last_owner') throw new AppError('conflict', { publicDetail: 'An organization needs at least one owner.' });
    const members = await this.listMembers(orgId);
    const view = members.find((m) => m.id === userId);
    if (!view) throw new AppError('not_found');
    return view;
  }

  /**
   * Invite by email. The answer is the same whether or not the address has an
   * account elsewhere (no enumeration); acceptance settles that.
   */
  async invite(org: Org, actor: User, emailInput: string, role: OrgRole, context: RequestContext): Promise<string> {
    if (role === 'owner' && actor.role !== 'owner') throw new AppError('forbidden', { publicDetail: 'Only an owner can invite an owner.' });
    const email = normalizeEmail(emailInput);
    const existing = await this.deps.users.byEmail(email);
    if (existing && existing.orgId === org.id) throw new AppError('conflict', { publicDetail: 'This person is already a member.' });
    const token = randomToken(32);
    const now = this.deps.clock.now();
    const invitationId = newId();
    await this.deps.orgs.createInvitation(
      {
        id: invitationId,
        orgId: org.id,
        email,
        role,
        tokenHash: hashToken(token),
        invitedBy: actor.id,
        expiresAt: new Date(now.getTime() + INVITATION_TTL_MS),
        createdAt: now,
      },
      {
        action: 'invitation.created',
        actor: { type: 'user', id: actor.id },
        orgId: org.id,
        subjectId: invitationId,
        data: { role },
        pii: { userId: actor.id, ...context, email },
      },
    );
    const link = new URL('/invitations/accept', this.deps.publicUrl);
    link.searchParams.set('token', token);
    await this.deps.mailer.send({
      kind: 'invitation',
      to: email,
      subject: `You are invited to ${org.name} on Cleverom`,
      text: `${actor.name} invited you to join ${org.name} on Cleverom as ${role}.\n\nAccept within 7 days:\n${link.href}\n\nToken: ${token}`,
    });
    return invitationId;
  }

  async acceptInvitation(input: {
    token: string;
    name: string;
    password: string;
    ageConfirmed: boolean;
    context: RequestContext;
  }): Promise<{ user: User; org: Org; session: NewSession }> {
    if (input.ageConfirmed !== true) throw new AppError('age_restricted');
    const password = normalizePassword(input.password);
    // The invited email and the organization's name are context words too, as at sign-up (NIST SP 800-63B-4 §3.1.1.2).
    const invitation = await this.deps.orgs.pendingInvitation(hashToken(input.token), this.deps.clock.now());
    const rules = await this.passwordRules(invitation?.orgId ?? null);
    const problem = checkPassword({
      password,
      field: 'password',
      minLength: rules.minLength,
      context: [input.name, ...(invitation === null ? [] : [invitation.email]), ...(rules.orgName === null ? [] : [rules.orgName])],
    });
    if (problem) throw validationFailed([problem]);
    const passwordHash = await this.deps.hasher.hash(password);
    const now = this.deps.clock.now();
    const userId = newId();
    const session = this.deps.sessions.mint({ userId, aal: 1, authMethod: 'invitation', context: input.context });
    const outcome = await this.deps.orgs.acceptInvitation({
      tokenHash: hashToken(input.token),
      now,
      user: { id: userId, name: input.name, passwordHash, ageConfirmedAt: now, createdAt: now },
      session,
      events: (orgId) => [
        {
          action: 'invitation.accepted',
          actor: { type: 'user', id: userId },
          orgId,
          subjectId: userId,
          data: { sessionId: session.session.id },
          pii: { userId, ...input.context },
        },
      ],
    });
    if (outcome.kind === 'invalid_token') throw validationFailed([{ field: 'token', message: 'is invalid, used or expired' }]);
    if (outcome.kind === 'email_taken') throw new AppError('conflict', { publicDetail: 'An account with this email already exists.' });
    const [user, org] = await Promise.all([this.deps.users.byId(userId), this.deps.orgs.byId(outcome.orgId)]);
    if (!user || !org) throw new Error('accepted invitation vanished');
    return { user, org, session };
  }
}

