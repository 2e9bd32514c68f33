import { randomBytes } from 'node:crypto';
import { isCalendarDate, ndaOnRecord, viewStatus, type AccessScope, type Decision, type RequestView } from '../access/decide.js';
import type { AuditActor, AuditEvent, AuditEventInput, RequestContext } from '../audit/events.js';
import type { UserRepository } from '../users/user-repository.js';
import type { PasswordHasher } from '../auth/password/hasher.js';
import { checkPassword, normalizePassword } from '../auth/password/policy.js';
import type { Org } from '../orgs/org.js';
import type { PlanCatalogue } from '../plans/plans.js';
import type { OrgRepository } from '../orgs/org-repository.js';
import type { Clock } from '../platform/clock.js';
import { AppError, validationFailed } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import { normalizeEmail, type User } from '../users/user.js';
import type { Guarded, StaffRepository } from './staff-repository.js';
import { STAFF_ROLES, type AccessRequest, type StaffMember, type StaffRole } from './staff.js';

export const DEFAULT_GRANT_MINUTES = 60;

export interface AccessRequestView {
  id: string;
  staffId: string;
  orgId: string;
  scope: AccessScope;
  reason: string;
  ticket: string | null;
  durationMinutes: number;
  status: RequestView;
  customerApproval: string;
  requestedAt: string;
  decidedBy: string | null;
  decidedAt: string | null;
  startsAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
}

/** The staff member behind a request: a person at Cleverom (with a staff role). */
export interface StaffActor {
  user: User;
  staff: StaffMember;
}

const iso = (d: Date | null): string | null => d?.toISOString() ?? null;

/**
 * Just-in-time staff access to customer data: requests, two-person approval
 * (approver ≠ requester, security_admin only), optional customer approval,
 * time-bounded grants, revocation, and every guarded access audited.
 */
export class StaffService {
  constructor(
    private readonly deps: {
      repo: StaffRepository;
      orgs: OrgRepository;
      plans: PlanCatalogue;
      hasher: PasswordHasher;
      users: UserRepository;
      clock: Clock;
      grantMaxMinutes: number;
    },
  ) {}

  member(userId: string): Promise<StaffMember | null> {
    return this.deps.repo.staffMember(userId);
  }

  view(r: AccessRequest): AccessRequestView {
    return {
      id: r.id,
      staffId: r.staffId,
      orgId: r.orgId,
      scope: r.scope,
      reason: r.reason,
      ticket: r.ticket,
      durationMinutes: r.durationMinutes,
      status: viewStatus(r, this.deps.clock.now()),
      customerApproval: r.customerApproval,
      requestedAt: r.requestedAt.toISOString(),
      decidedBy: r.decidedBy,
      decidedAt: iso(r.decidedAt),
      startsAt: iso(r.startsAt),
      expiresAt: iso(r.expiresAt),
      revokedAt: iso(r.revokedAt),
    };
  }

  /** CLI `staff:create`: the only way to make a staff principal. */
  async createStaff(input: { email: string; name: string; role: string; ndaSignedAt: string | null; password: string | null }): Promise<{ id: string; oneTimePassword?: string }> {
    if (!(STAFF_ROLES as readonly string[]).includes(input.role)) {
      throw validationFailed([{ field: 'role', message: `must be one of ${STAFF_ROLES.join(', ')}` }]);
    }
    if (input.ndaSignedAt !== null && !isCalendarDate(input.ndaSignedAt)) {
      throw validationFailed([{ field: 'ndaSigned', message: 'must be a date YYYY-MM-DD' }]);
    }
    // SECURITY.md "staff": an NDA counts once signed, on or before today (issue 23 item 6).
    if (input.ndaSignedAt !== null && !ndaOnRecord(input.ndaSignedAt, this.deps.clock.now())) {
      throw validationFailed([{ field: 'ndaSigned', message: 'must not be after today: an NDA is on record only once it has been signed' }]);
    }
    const email = normalizeEmail(input.email);
    const generated = input.password === null ? randomBytes(18).toString('base64url') : null;
    const password = normalizePassword(input.password ?? generated ?? '');
    const problem = checkPassword({ password, field: 'password', context: [email, input.name] });
    if (problem) throw validationFailed([problem]);
    const passwordHash = await this.deps.hasher.hash(password);
    const now = this.deps.clock.now();
    const id = newId();
    const created = await this.deps.repo.createStaff(
      { id, email, name: input.name, passwordHash, orgId: null, role: null, ageConfirmedAt: null, createdAt: now },
      { role: input.role as StaffRole, ndaSignedAt: input.ndaSignedAt },
      { action: 'staff.created', actor: { type: 'system', id: null }, subjectId: id, data: { role: input.role, ndaOnRecord: input.ndaSignedAt !== null } },
    );
    if (!created) throw new AppError('conflict', { publicDetail: 'An account with this email already exists.' });
    return generated ? { id, oneTimePassword: generated } : { id };
  }

  private actor(staff: StaffActor): AuditActor {
    return { type: 'staff', id: staff.user.id };
  }

  private event(staff: StaffActor, action: string, r: { id: string; orgId: string }, context: RequestContext, data: AuditEventInput['data'] = {}): AuditEventInput {
    return { action, actor: this.actor(staff), orgId: r.orgId, subjectId: r.id, data, pii: { userId: staff.user.id, ...context } };
  }

  async requestAccess(
    staff: StaffActor,
    input: { orgId: string; scope: AccessScope; reason: string; ticket?: string | undefined; durationMinutes?: number | undefined },
    context: RequestContext,
  ): Promise<AccessRequest> {
    // No NDA on record → no grant, ever (the promise to customers).
    if (!ndaOnRecord(staff.staff.ndaSignedAt, this.deps.clock.now())) throw new AppError('forbidden', { publicDetail: 'No signed NDA is on record for you.' });
    const duration = input.durationMinutes ?? DEFAULT_GRANT_MINUTES;
    if (duration > this.deps.grantMaxMinutes) {
      throw validationFailed([{ field: 'durationMinutes', message: `must be at most ${this.deps.grantMaxMinutes}` }]);
    }
    const org = await this.deps.orgs.byId(input.orgId);
    if (!org) throw new AppError('not_found');
    const id = newId();
    const customerApproval = this.needsCustomerApproval(org) ? 'pending' : 'not_required';
    await this.deps.repo.createRequest(
      {
        id,
        staffId: staff.user.id,
        orgId: org.id,
        scope: input.scope,
        reason: input.reason,
        ticket: input.ticket ?? null,
        durationMinutes: duration,
        customerApproval,
        requestedAt: this.deps.clock.now(),
      },
      this.event(staff, 'staff.access.requested', { id, orgId: org.id }, context, { scope: input.scope, durationMinutes: duration, customerApproval }),
    );
    return this.mustGet(id);
  }

  private needsCustomerApproval(org: Org): boolean {
    return org.settings.requireCustomerApproval && this.deps.plans.has(org.plan, 'access_approval');
  }

  private async mustGet(id: string): Promise<AccessRequest> {
    const r = await this.deps.repo.request(id);
    if (!r) throw new AppError('not_found');
    return r;
  }

  async list(staff: StaffActor, status: string | undefined): Promise<AccessRequestView[]> {
    // Security admins see every request; everyone else sees their own.
    const all = await this.deps.repo.listRequests({ ...(staff.staff.role === 'security_admin' ? {} : { staffId: staff.user.id }), limit: 500 });
    const views = all.map((r) => this.view(r));
    return status ? views.filter((v) => v.status === status) : views;
  }

  /** Two-person rule: only a security_admin who is not the requester decides. */
  async decide(staff: StaffActor, id: string, approve: boolean, comment: string | undefined, context: RequestContext): Promise<AccessRequest> {
    if (staff.staff.role !== 'security_admin') throw new AppError('forbidden', { publicDetail: 'Only a security admin can decide access requests.' });
    const request = await this.mustGet(id);
    if (request.staffId === staff.user.id) throw new AppError('forbidden', { publicDetail: 'You cannot decide your own request.' });
    const decided = await this.deps.repo.decide({
      id,
      by: staff.user.id,
      at: this.deps.clock.now(),
      approve,
      comment: comment ?? null,
      event: this.event(staff, approve ? 'staff.access.approved' : 'staff.access.denied', request, context, { requesterId: request.staffId }),
    });
    if (!decided) throw new AppError('conflict', { publicDetail: 'This request was already decided or has expired.' });
    return decided;
  }

  /** The customer's own approval (owner/admin of the organization). */
  async customerDecide(admin: User, orgId: string, id: string, approve: boolean, context: RequestContext): Promise<AccessRequest> {
    const request = await this.deps.repo.request(id);
    if (!request || request.orgId !== orgId) throw new AppError('not_found');
    const decided = await this.deps.repo.customerDecide({
      id,
      orgId,
      by: admin.id,
      at: this.deps.clock.now(),
      approve,
      event: {
        action: approve ? 'staff.access.customer_approved' : 'staff.access.customer_denied',
        actor: { type: 'user', id: admin.id },
        orgId,
        subjectId: id,
        data: { requesterId: request.staffId },
        pii: { userId: admin.id, ...context },
      },
    });
    if (!decided) throw new AppError('conflict', { publicDetail: 'This request is not awaiting your approval.' });
    return decided;
  }

  async listForOrg(orgId: string): Promise<AccessRequestView[]> {
    return (await this.deps.repo.listRequests({ orgId, limit: 500 })).map((r) => this.view(r));
  }

  async revoke(staff: StaffActor, id: string, context: RequestContext): Promise<void> {
    const request = await this.mustGet(id);
    if (request.staffId !== staff.user.id && staff.staff.role !== 'security_admin') {
      throw new AppError('forbidden', { publicDetail: 'Only the requester or a security admin can revoke.' });
    }
    const ok = await this.deps.repo.revoke({ id, by: staff.user.id, at: this.deps.clock.now(), event: this.event(staff, 'staff.access.revoked', request, context) });
    if (!ok) throw new AppError('conflict', { publicDetail: 'This request is no longer active.' });
  }

  activeGrants(): Promise<number> {
    return this.deps.repo.countActive(this.deps.clock.now());
  }

  /** Record the end of grants and the lapse of pending requests (run periodically, and before listings). */
  expireDue(): Promise<number> {
    return this.deps.repo.expireDue(this.deps.clock.now(), (r, kind) => ({
      action: kind === 'grant' ? 'staff.access.expired' : 'staff.access.request_lapsed',
      actor: { type: 'system', id: null },
      orgId: r.orgId,
      subjectId: r.id,
      data: { staffId: r.staffId },
    }));
  }

  private accessEvent(staff: StaffActor, orgId: string, action: AccessScope, resource: string, requestId: string, context: RequestContext, subjectId?: string) {
    return (decision: Decision): AuditEventInput => {
      const base = { scope: action, resource, requestId };
      return {
        action: decision.allow ? `staff.access.${action}` : 'staff.access.refused',
        actor: this.actor(staff),
        orgId,
        subjectId: subjectId ?? orgId,
        data: decision.allow ? { ...base, grantId: decision.grant.id } : { ...base, reason: decision.reason },
        pii: { userId: staff.user.id, ...context },
      };
    };
  }

  private unwrap<T>(result: Guarded<T>): T {
    if (!result.decision.allow) throw new AppError('access_grant_required', { extra: { reason: result.decision.reason } });
    if (result.value === null) throw new AppError('not_found');
    return result.value;
  }

  async consoleOrg(staff: StaffActor, orgId: string, requestId: string, context: RequestContext): Promise<Org> {
    const now = this.deps.clock.now();
    return this.unwrap(await this.deps.repo.readOrg(staff.user.id, orgId, now, this.accessEvent(staff, orgId, 'read', `org:${orgId}`, requestId, context)));
  }

  async consoleMembers(staff: StaffActor, orgId: string, requestId: string, context: RequestContext): Promise<User[]> {
    const now = this.deps.clock.now();
    return this.unwrap(await this.deps.repo.readMembers(staff.user.id, orgId, now, this.accessEvent(staff, orgId, 'read', `org:${orgId}/members`, requestId, context)));
  }

  async consoleMember(staff: StaffActor, orgId: string, userId: string, requestId: string, context: RequestContext): Promise<User> {
    const now = this.deps.clock.now();
    return this.unwrap(
      await this.deps.repo.readMember(staff.user.id, orgId, userId, now, this.accessEvent(staff, orgId, 'read', `org:${orgId}/members/${userId}`, requestId, context, userId)),
    );
  }

  async consoleRevokeSessions(staff: StaffActor, orgId: string, userId: string, requestId: string, context: RequestContext): Promise<number> {
    const now = this.deps.clock.now();
    return this.unwrap(
      await this.deps.repo.revokeMemberSessions(
        staff.user.id, orgId, userId, now,
        this.accessEvent(staff, orgId, 'write', `org:${orgId}/members/${userId}/sessions`, requestId, context, userId),
      ),
    );
  }

  /**
   * Access transparency: who at Cleverom touched the organization's data,
   * when, what, under which grant and for what stated reason.
   */
  async describeAccesses(events: AuditEvent[]): Promise<AccessLogEntry[]> {
    const grants = new Map<string, AccessRequest | null>();
    const names = new Map<string, string | null>();
    const entries: AccessLogEntry[] = [];
    for (const e of events) {
      const via = e.action.startsWith('staff.authz.') ? 'authz' : 'console';
      const staffId = via === 'authz' ? (typeof e.data.staffId === 'string' ? e.data.staffId : null) : e.actorId;
      const grantId = typeof e.data.grantId === 'string' ? e.data.grantId : null;
      if (grantId && !grants.has(grantId)) grants.set(grantId, await this.deps.repo.request(grantId));
      if (staffId && !names.has(staffId)) names.set(staffId, (await this.deps.users.byId(staffId))?.name ?? null);
      const grant = grantId ? grants.get(grantId) ?? null : null;
      entries.push({
        seq: e.seq,
        at: e.at,
        staffId,
        staffName: staffId ? names.get(staffId) ?? null : null,
        action: e.action,
        allowed: e.action === 'staff.access.read' || e.action === 'staff.access.write' || e.action === 'staff.authz.allowed',
        scope: typeof e.data.scope === 'string' ? e.data.scope : null,
        resource: typeof e.data.resource === 'string' ? e.data.resource : null,
        grantId,
        reason: grant?.reason ?? (typeof e.data.reason === 'string' ? e.data.reason : null),
        ticket: grant?.ticket ?? null,
        via,
      });
    }
    return entries;
  }

  /** `POST /v1/authz/check`: another production service asks before serving a staff request. */
  async check(input: { staffId: string; orgId: string; action: AccessScope; resource: string; serviceId: string; requestId: string }): Promise<{ allow: boolean; grantId?: string; expiresAt?: string; reason?: string }> {
    const decision = await this.deps.repo.check(input.staffId, input.orgId, input.action, this.deps.clock.now(), (d): AuditEventInput => {
      const base = { staffId: input.staffId, scope: input.action, resource: input.resource, requestId: input.requestId };
      return {
        action: d.allow ? 'staff.authz.allowed' : 'staff.authz.denied',
        actor: { type: 'service', id: input.serviceId },
        orgId: input.orgId,
        subjectId: input.staffId,
        data: d.allow ? { ...base, grantId: d.grant.id } : { ...base, reason: d.reason },
      };
    });
    return decision.allow
      ? { allow: true, grantId: decision.grant.id, ...(decision.grant.expiresAt ? { expiresAt: decision.grant.expiresAt.toISOString() } : {}) }
      : { allow: false, reason: decision.reason };
  }
}

export interface AccessLogEntry {
  at: string;
  staffId: string | null;
  staffName: string | null;
  action: string;
  allowed: boolean;
  scope: string | null;
  resource: string | null;
  grantId: string | null;
  reason: string | null;
  ticket: string | null;
  via: 'console' | 'authz';
  seq: number;
}
