import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../app.js';
import type { AuditFilter } from '../audit/sqlite-audit.js';
import { userOf } from '../http/policy.js';
import { Id } from '../http/schemas.js';
import { ndaOnRecord } from '../access/decide.js';
import { AppError } from '../platform/errors.js';
import type { StaffActor } from '../staff/staff-service.js';
import { formBody, formFailure, validationFailure, type FormFailure } from './forms.js';
import { formatTime, renderPage, seeOther, timeLeft } from './render.js';

const RequestForm = formBody({
  orgId: Type.String({ maxLength: 64 }),
  scope: Type.Union([Type.Literal('read'), Type.Literal('write')]),
  reason: Type.String({ maxLength: 1000 }),
  ticket: Type.Optional(Type.String({ maxLength: 100 })),
  durationMinutes: Type.Optional(Type.String({ maxLength: 4 })),
});
const DecisionParams = Type.Object({ id: Id, verb: Type.Union([Type.Literal('approve'), Type.Literal('deny')]) });
const RevokeParams = Type.Object({ id: Id });
const DecisionForm = formBody({ comment: Type.Optional(Type.String({ maxLength: 1000 })) });
const AuditQuery = Type.Object(
  {
    orgId: Type.Optional(Type.String({ maxLength: 64 })),
    actorId: Type.Optional(Type.String({ maxLength: 64 })),
    action: Type.Optional(Type.String({ maxLength: 100 })),
    from: Type.Optional(Type.String({ maxLength: 10 })),
    to: Type.Optional(Type.String({ maxLength: 10 })),
    after: Type.Optional(Type.String({ maxLength: 15, pattern: '^[0-9]*$' })),
  },
  { additionalProperties: false },
);
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
const AUDIT_PAGE = 100;

function staffOf(request: FastifyRequest): StaffActor {
  const { user } = userOf(request);
  if (!request.staffMember) throw new AppError('forbidden');
  return { user, staff: request.staffMember };
}

/**
 * The staff console (staff with AAL2; policy.ts): request just-in-time
 * access, decide requests (security_admin, never your own), grants with the
 * time they have left, read-only views of an organization during a grant
 * (each view audited by the staff service), and audit search.
 */
export function staffPages(scope: FastifyInstance, services: Services): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const csrf = { preValidation: scope.csrfProtection, attachValidation: true } as const;
  const anyStaff = { auth: 'user', staff: 'any' } as const;
  // As in the API (staff/routes.ts): requesting and deciding need a second factor within 10 minutes.
  const withFreshFactor = { auth: 'user', staff: 'any', fresh: 'second_factor' } as const;

  async function consolePage(request: FastifyRequest, reply: FastifyReply, failed: FormFailure | null = null): Promise<FastifyReply> {
    const staff = staffOf(request);
    await services.staff.expireDue();
    const now = services.clock.now();
    const names = new Map<string, string>();
    const nameOf = async (id: string | null): Promise<string> => {
      if (id === null) return '';
      if (!names.has(id)) names.set(id, (await services.users.byId(id))?.name ?? id);
      return names.get(id) ?? id;
    };
    const admin = staff.staff.role === 'security_admin';
    const all = await services.staff.list(staff, undefined);
    const rows = await Promise.all(
      all.map(async (r) => {
        const own = r.staffId === staff.user.id;
        const open = r.status === 'pending' || r.status === 'awaiting_customer' || r.status === 'active';
        return {
          id: r.id,
          requester: own ? 'You' : await nameOf(r.staffId),
          orgId: r.orgId,
          scope: r.scope,
          reason: r.reason,
          ticket: r.ticket,
          durationMinutes: r.durationMinutes,
          status: r.status.replace('_', ' '),
          requestedAt: formatTime(r.requestedAt),
          expiresAt: formatTime(r.expiresAt),
          timeLeft: r.status === 'active' ? timeLeft(r.expiresAt, now) : '',
          canDecide: admin && !own && r.status === 'pending',
          canRevoke: open && (own || admin),
          canOpen: own && r.status === 'active',
          active: r.status === 'active',
          pending: r.status === 'pending' || r.status === 'awaiting_customer',
        };
      }),
    );
    return renderPage(
      request,
      reply,
      'staff',
      {
        title: 'Staff console',
        me: { name: staff.user.name, role: staff.staff.role.replace('_', ' '), securityAdmin: admin, nda: ndaOnRecord(staff.staff.ndaSignedAt, now) },
        approvals: rows.filter((r) => r.canDecide),
        grants: rows.filter((r) => r.active),
        pending: rows.filter((r) => r.pending && !r.canDecide),
        history: rows.filter((r) => !r.active && !r.pending),
        maxMinutes: services.config.staffGrantMaxMinutes,
      },
      { failed },
    );
  }

  app.get('/staff', { config: anyStaff, schema: { hide: true } }, async (request, reply) => consolePage(request, reply));

  app.post('/staff/access-requests', { ...csrf, config: withFreshFactor, schema: { hide: true, body: RequestForm } }, async (request, reply) => {
    const invalid = validationFailure(request, 'request');
    if (invalid) return consolePage(request, reply, invalid);
    const body = request.body;
    const fields: Record<string, string> = {};
    const orgId = body.orgId.trim();
    if (!ID_PATTERN.test(orgId)) fields.orgId = 'Enter the organization ID.';
    const reason = body.reason.trim();
    if (reason.length < 5) fields.reason = 'Say why you need access (at least 5 characters).';
    const ticket = body.ticket?.trim() ?? '';
    const minutesText = body.durationMinutes?.trim() ?? '';
    const durationMinutes = minutesText === '' ? undefined : Number(minutesText);
    if (durationMinutes !== undefined && (!Number.isInteger(durationMinutes) || durationMinutes < 5)) fields.durationMinutes = 'Enter whole minutes, at least 5.';
    if (Object.keys(fields).length > 0) {
      return consolePage(request, reply, { form: 'request', status: 400, message: 'Please correct the fields marked below.', fields, values: { orgId: body.orgId, scope: body.scope, reason: body.reason, ticket, durationMinutes: minutesText } });
    }
    try {
      await services.staff.requestAccess(staffOf(request), { orgId, scope: body.scope, reason, ticket: ticket === '' ? undefined : ticket, durationMinutes }, request.requestContext);
      return seeOther(reply, '/staff?done=requested');
    } catch (error) {
      const failed = formFailure(error, 'request', body);
      if (!failed) throw error;
      if (error instanceof AppError && error.code === 'not_found') failed.fields.orgId = 'No organization has this ID.';
      return consolePage(request, reply, failed);
    }
  });

  async function decisionRoute(verb: 'approve' | 'deny' | 'revoke', id: string, request: FastifyRequest<{ Body: { comment?: string } }>, reply: FastifyReply): Promise<FastifyReply> {
    const form = `decision-${id}`;
    const invalid = validationFailure(request, form);
    if (invalid) return consolePage(request, reply, invalid);
    try {
      const staff = staffOf(request);
      if (verb === 'revoke') await services.staff.revoke(staff, id, request.requestContext);
      else {
        const comment = request.body.comment?.trim();
        await services.staff.decide(staff, id, verb === 'approve', comment === '' ? undefined : comment, request.requestContext);
      }
      return seeOther(reply, `/staff?done=${verb === 'approve' ? 'approved' : verb === 'deny' ? 'denied' : 'revoked'}`);
    } catch (error) {
      const failed = formFailure(error, form, request.body);
      if (!failed) throw error;
      return consolePage(request, reply, failed);
    }
  }

  // Ending access early needs no fresh factor (it only takes access away).
  app.post('/staff/access-requests/:id/revoke', { ...csrf, config: anyStaff, schema: { hide: true, params: RevokeParams, body: DecisionForm } }, async (request, reply) =>
    decisionRoute('revoke', request.params.id, request, reply),
  );
  app.post('/staff/access-requests/:id/:verb', { ...csrf, config: withFreshFactor, schema: { hide: true, params: DecisionParams, body: DecisionForm } }, async (request, reply) =>
    decisionRoute(request.params.verb, request.params.id, request, reply),
  );

  // Read-only view of an organization during a grant: each read is checked and audited by the staff service.
  app.get('/staff/orgs/:orgId', { config: anyStaff, schema: { hide: true, params: Type.Object({ orgId: Id }) } }, async (request, reply) => {
    const staff = staffOf(request);
    const org = await services.staff.consoleOrg(staff, request.params.orgId, request.id, request.requestContext);
    const members = await services.staff.consoleMembers(staff, request.params.orgId, request.id, request.requestContext);
    const grant = (await services.staff.list(staff, 'active')).filter((r) => r.orgId === org.id && r.staffId === staff.user.id).sort((a, b) => (b.expiresAt ?? '').localeCompare(a.expiresAt ?? ''))[0];
    return renderPage(request, reply, 'staff-org', {
      title: `Organization ${org.name} (read only)`,
      org: { id: org.id, name: org.name, plan: org.plan, createdAt: formatTime(org.createdAt), settings: org.settings },
      members: members.map((m) => ({ name: m.name, email: m.email, role: m.role ?? 'member', status: m.status, createdAt: formatTime(m.createdAt) })),
      grantLeft: grant ? timeLeft(grant.expiresAt, services.clock.now()) : '',
    });
  });

  app.get('/staff/audit', { config: { auth: 'user', staff: 'security_admin' }, schema: { hide: true, querystring: AuditQuery } }, async (request, reply) => {
    const q = request.query;
    const fields: Record<string, string> = {};
    const filter: AuditFilter = { afterSeq: q.after ? Number(q.after) : 0, limit: AUDIT_PAGE };
    const orgId = q.orgId?.trim() ?? '';
    const actorId = q.actorId?.trim() ?? '';
    const action = q.action?.trim() ?? '';
    if (orgId !== '') ID_PATTERN.test(orgId) ? (filter.orgId = orgId) : (fields.orgId = 'This is not an ID.');
    if (actorId !== '') ID_PATTERN.test(actorId) ? (filter.actorId = actorId) : (fields.actorId = 'This is not an ID.');
    if (action !== '') filter.action = action;
    for (const key of ['from', 'to'] as const) {
      const value = q[key]?.trim() ?? '';
      if (value === '') continue;
      const date = DATE_PATTERN.test(value) ? new Date(`${value}T00:00:00Z`) : null;
      if (!date || Number.isNaN(date.getTime())) fields[key] = 'Enter a date as YYYY-MM-DD.';
      // "to" is inclusive of its whole day.
      else filter[key] = key === 'to' ? new Date(date.getTime() + 86_400_000) : date;
    }
    const failed: FormFailure | null = Object.keys(fields).length > 0 ? { form: 'audit', status: 400, message: 'Please correct the fields marked below.', fields, values: {} } : null;
    // Reading the audit log is a staff access: the service records it, as for GET /v1/staff/audit.
    const events = failed ? [] : await services.auditService.searchAsStaff(staffOf(request), filter, 'console', request.requestContext);
    const last = events.at(-1);
    const next = events.length === AUDIT_PAGE && last ? new URLSearchParams({ ...(orgId ? { orgId } : {}), ...(actorId ? { actorId } : {}), ...(action ? { action } : {}), ...(q.from ? { from: q.from } : {}), ...(q.to ? { to: q.to } : {}), after: String(last.seq) }).toString() : null;
    return renderPage(
      request,
      reply,
      'staff-audit',
      {
        title: 'Audit search',
        query: { orgId, actorId, action, from: q.from ?? '', to: q.to ?? '' },
        searched: Object.keys(q).length > 0,
        events: events.map((e) => ({ seq: e.seq, at: formatTime(e.at), action: e.action, actor: `${e.actorType}${e.actorId ? ` ${e.actorId}` : ''}`, orgId: e.orgId ?? '', subjectId: e.subjectId ?? '', data: JSON.stringify(e.data) })),
        nextHref: next ? `/staff/audit?${next}` : null,
      },
      { failed },
    );
  });
}
