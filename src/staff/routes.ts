import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../app.js';
import { userOf } from '../http/policy.js';
import { Id, MemberParams, OrgIdParams, OrgViewSchema } from '../http/schemas.js';
import { AppError } from '../platform/errors.js';
import type { StaffActor } from './staff-service.js';

const Scope = Type.Union([Type.Literal('read'), Type.Literal('write')]);
const RequestView = Type.Object({
  id: Type.String(),
  staffId: Type.String(),
  orgId: Type.String(),
  scope: Type.String(),
  reason: Type.String(),
  ticket: Type.Union([Type.String(), Type.Null()]),
  durationMinutes: Type.Integer(),
  status: Type.String(),
  customerApproval: Type.String(),
  requestedAt: Type.String(),
  decidedBy: Type.Union([Type.String(), Type.Null()]),
  decidedAt: Type.Union([Type.String(), Type.Null()]),
  startsAt: Type.Union([Type.String(), Type.Null()]),
  expiresAt: Type.Union([Type.String(), Type.Null()]),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
});
const Decision = Type.Object({ id: Type.String(), status: Type.String(), expiresAt: Type.Optional(Type.String()) });
const StaffMemberView = Type.Object({
  id: Type.String(),
  email: Type.String(),
  name: Type.String(),
  phone: Type.Union([Type.String(), Type.Null()]),
  role: Type.String(),
  status: Type.String(),
  createdAt: Type.String(),
});

function staffOf(request: FastifyRequest): StaffActor {
  const { user } = userOf(request);
  const staff = request.staffMember;
  if (!staff) throw new AppError('forbidden');
  return { user, staff };
}

export function staffRoutes(scope: FastifyInstance, services: Services): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const decision = (r: Parameters<typeof services.staff.view>[0]) => {
    const view = services.staff.view(r);
    return { id: view.id, status: view.status, ...(view.expiresAt && view.status === 'active' ? { expiresAt: view.expiresAt } : {}) };
  };

  /**
   * SECURITY.md "staff": requesting, approving and break-glass need a second
   * factor within the last 10 minutes (issue 23 item 5). A session kept alive
   * since a morning login, or refreshed with a password only, is not enough:
   * `401 reauthentication_required` until `POST /v1/me/reauthenticate {code}`.
   */
  const withFreshFactor = { auth: 'user', staff: 'any', fresh: 'second_factor' } as const;

  app.post(
    '/v1/staff/access-requests',
    {
      config: withFreshFactor,
      schema: {
        tags: ['staff'],
        summary: 'Request just-in-time access to an organization',
        body: Type.Object(
          {
            orgId: Id,
            scope: Scope,
            reason: Type.String({ minLength: 5, maxLength: 1000 }),
            ticket: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            durationMinutes: Type.Optional(Type.Integer({ minimum: 5 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: RequestView },
      },
    },
    async (request, reply) => {
      const created = await services.staff.requestAccess(staffOf(request), request.body, request.requestContext);
      return reply.status(201).send(services.staff.view(created));
    },
  );

  app.get(
    '/v1/staff/access-requests',
    {
      config: { auth: 'user', staff: 'any' },
      schema: {
        tags: ['staff'],
        summary: 'Access requests (all for security admins, your own otherwise)',
        querystring: Type.Object({ status: Type.Optional(Type.String({ maxLength: 40 })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ requests: Type.Array(RequestView) }) },
      },
    },
    async (request) => {
      await services.staff.expireDue();
      return { requests: await services.staff.list(staffOf(request), request.query.status) };
    },
  );

  for (const verb of ['approve', 'deny'] as const) {
    app.post(
      `/v1/staff/access-requests/:id/${verb}`,
      {
        config: withFreshFactor,
        schema: {
          tags: ['staff'],
          summary: `${verb === 'approve' ? 'Approve' : 'Deny'} a request (security_admin, not the requester)`,
          params: Type.Object({ id: Id }),
          body: Type.Optional(Type.Object({ comment: Type.Optional(Type.String({ maxLength: 1000 })) }, { additionalProperties: false })),
          response: { 200: Decision },
        },
      },
      async (request) => {
        const decided = await services.staff.decide(staffOf(request), request.params.id, verb === 'approve', request.body?.comment, request.requestContext);
        return decision(decided);
      },
    );
  }

  app.post(
    '/v1/staff/access-requests/:id/revoke',
    { config: { auth: 'user', staff: 'any' }, schema: { tags: ['staff'], summary: 'Revoke a request or grant early', params: Type.Object({ id: Id }) } },
    async (request, reply) => {
      await services.staff.revoke(staffOf(request), request.params.id, request.requestContext);
      return reply.status(204).send();
    },
  );

  app.get(
    '/v1/staff/orgs/:orgId',
    { config: { auth: 'user', staff: 'any' }, schema: { tags: ['staff console'], summary: 'Read an organization (read grant)', params: OrgIdParams, response: { 200: OrgViewSchema } } },
    async (request) => services.orgs.view(await services.staff.consoleOrg(staffOf(request), request.params.orgId, request.id, request.requestContext)),
  );

  app.get(
    '/v1/staff/orgs/:orgId/members',
    {
      config: { auth: 'user', staff: 'any' },
      schema: { tags: ['staff console'], summary: 'Read members (read grant)', params: OrgIdParams, response: { 200: Type.Object({ members: Type.Array(StaffMemberView) }) } },
    },
    async (request) => {
      const members = await services.staff.consoleMembers(staffOf(request), request.params.orgId, request.id, request.requestContext);
      return {
        members: members.map((m) => ({ id: m.id, email: m.email, name: m.name, phone: m.phone, role: m.role ?? 'member', status: m.status, createdAt: m.createdAt.toISOString() })),
      };
    },
  );

  app.get(
    '/v1/staff/orgs/:orgId/members/:userId',
    { config: { auth: 'user', staff: 'any' }, schema: { tags: ['staff console'], summary: 'Read one member (read grant)', params: MemberParams, response: { 200: StaffMemberView } } },
    async (request) => {
      const m = await services.staff.consoleMember(staffOf(request), request.params.orgId, request.params.userId, request.id, request.requestContext);
      return { id: m.id, email: m.email, name: m.name, phone: m.phone, role: m.role ?? 'member', status: m.status, createdAt: m.createdAt.toISOString() };
    },
  );

  app.post(
    '/v1/staff/orgs/:orgId/members/:userId/revoke-sessions',
    { config: { auth: 'user', staff: 'any' }, schema: { tags: ['staff console'], summary: "Revoke a member's sessions (write grant)", params: MemberParams } },
    async (request, reply) => {
      await services.staff.consoleRevokeSessions(staffOf(request), request.params.orgId, request.params.userId, request.id, request.requestContext);
      return reply.status(204).send();
    },
  );

  app.post(
    '/v1/authz/check',
    {
      config: { auth: 'service', scope: 'authz:check' },
      schema: {
        tags: ['internal'],
        summary: 'May this staff member do this to this organization now? (logged)',
        body: Type.Object({ staffId: Id, orgId: Id, action: Scope, resource: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false }),
        response: {
          200: Type.Object({ allow: Type.Boolean(), grantId: Type.Optional(Type.String()), expiresAt: Type.Optional(Type.String()), reason: Type.Optional(Type.String()) }),
        },
      },
    },
    async (request) => {
      const principal = request.principal;
      if (principal?.kind !== 'service') throw new AppError('unauthenticated');
      return services.staff.check({ ...request.body, serviceId: principal.token.id, requestId: request.id });
    },
  );

  // The customer's side: their approvals of staff access.
  app.get(
    '/v1/orgs/:orgId/access-requests',
    {
      config: { auth: 'user', role: 'admin' },
      schema: { tags: ['orgs'], summary: 'Staff access requests for your organization', params: OrgIdParams, response: { 200: Type.Object({ requests: Type.Array(RequestView) }) } },
    },
    async (request) => ({ requests: await services.staff.listForOrg(request.params.orgId) }),
  );

  for (const verb of ['approve', 'deny'] as const) {
    app.post(
      `/v1/orgs/:orgId/access-requests/:id/${verb}`,
      {
        config: { auth: 'user', role: 'admin' },
        schema: {
          tags: ['orgs'],
          summary: `${verb === 'approve' ? 'Approve' : 'Deny'} staff access to your organization`,
          params: Type.Object({ orgId: Id, id: Id }),
          response: { 200: Decision },
        },
      },
      async (request) => {
        const { user } = userOf(request);
        return decision(await services.staff.customerDecide(user, request.params.orgId, request.params.id, verb === 'approve', request.requestContext));
      },
    );
  }
}
