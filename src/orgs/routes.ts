import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../app.js';
import { setSessionCookie } from '../http/cookies.js';
import { userOf } from '../http/policy.js';
import {
  Email, MemberParams, MemberViewSchema, OpaqueToken, OrgIdParams, OrgName, OrgViewSchema, Password, PersonName, Role,
  SessionSummary, UserView,
} from '../http/schemas.js';
import { sessionView } from '../auth/session/session.js';
import { AppError } from '../platform/errors.js';
import { publicUser } from '../users/user.js';

const SignupResponse = Type.Object({
  user: UserView,
  organization: OrgViewSchema,
  session: SessionSummary,
});

/**
 * Accounts belong to one organization, so removing a member erases their
 * account and every personal datum through the privacy erasure (the org acts
 * as controller), recorded as `member.removed`. Removing oneself needs a fresh
 * authentication, as erasing oneself does.
 */
export async function removeMember(services: Services, request: FastifyRequest<{ Params: { orgId: string; userId: string } }>): Promise<void> {
  const { user, session } = userOf(request);
  const target = await services.orgs.member(request.params.orgId, request.params.userId);
  if (target.id === user.id && !services.sessions.isRecentlyAuthenticated(session, 'any')) throw new AppError('reauthentication_required');
  await services.privacy.erase({ actor: user, target, context: request.requestContext }, 'keep', {
    action: 'member.removed',
    data: { role: target.role ?? 'member' },
  });
}

export function orgRoutes(scope: FastifyInstance, services: Services): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const cookies = { secure: services.config.secureCookies };
  const credentialLimit = { rateLimit: { max: services.config.rateLimitPerIpPerMinute, timeWindow: 60_000 } };

  app.post(
    '/v1/signup',
    {
      config: credentialLimit,
      schema: {
        tags: ['auth'],
        summary: 'Create an organization (free plan) with yourself as owner',
        body: Type.Object(
          { orgName: OrgName, name: PersonName, email: Email, password: Password, ageConfirmed: Type.Boolean() },
          { additionalProperties: false },
        ),
        response: { 201: SignupResponse },
      },
    },
    async (request, reply) => {
      const result = await services.orgs.signup({ ...request.body, context: request.requestContext });
      setSessionCookie(reply, cookies, result.session);
      return reply.status(201).send({
        user: publicUser(result.user),
        organization: services.orgs.view(result.org),
        session: sessionView(result.session.session),
      });
    },
  );

  app.post(
    '/v1/invitations/accept',
    {
      config: credentialLimit,
      schema: {
        tags: ['orgs'],
        summary: 'Accept an invitation: creates your account and a session',
        body: Type.Object(
          { token: OpaqueToken, name: PersonName, password: Password, ageConfirmed: Type.Boolean() },
          { additionalProperties: false },
        ),
        response: { 201: SignupResponse },
      },
    },
    async (request, reply) => {
      const result = await services.orgs.acceptInvitation({ ...request.body, context: request.requestContext });
      setSessionCookie(reply, cookies, result.session);
      return reply.status(201).send({
        user: publicUser(result.user),
        organization: services.orgs.view(result.org),
        session: sessionView(result.session.session),
      });
    },
  );

  app.get(
    '/v1/orgs/:orgId',
    {
      config: { auth: 'user', role: 'member' },
      schema: { tags: ['orgs'], summary: 'Your organization', params: OrgIdParams, response: { 200: OrgViewSchema } },
    },
    async (request) => services.orgs.view(await services.orgs.get(request.params.orgId)),
  );

  app.patch(
    '/v1/orgs/:orgId',
    {
      config: { auth: 'user', role: 'admin' },
      schema: {
        tags: ['orgs'],
        summary: 'Rename the organization or change its settings',
        params: OrgIdParams,
        body: Type.Object(
          {
            name: Type.Optional(OrgName),
            settings: Type.Optional(
              Type.Object(
                {
                  requireMfa: Type.Optional(Type.Boolean()),
                  enforceSso: Type.Optional(Type.Boolean()),
                  requireCustomerApproval: Type.Optional(Type.Boolean()),
                  passwordMinLength: Type.Optional(Type.Integer({ minimum: 8, maximum: 15 })),
                },
                { additionalProperties: false },
              ),
            ),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: OrgViewSchema },
      },
    },
    async (request) => {
      const { user } = userOf(request);
      const org = await services.orgs.get(request.params.orgId);
      const updated = await services.orgs.update(org, user, request.body, request.requestContext);
      return services.orgs.view(updated);
    },
  );

  app.get(
    '/v1/orgs/:orgId/members',
    {
      config: { auth: 'user', role: 'member' },
      schema: { tags: ['orgs'], summary: 'Members', params: OrgIdParams, response: { 200: Type.Object({ members: Type.Array(MemberViewSchema) }) } },
    },
    async (request) => ({ members: await services.orgs.listMembers(request.params.orgId) }),
  );

  app.patch(
    '/v1/orgs/:orgId/members/:userId',
    {
      config: { auth: 'user', role: 'admin' },
      schema: {
        tags: ['orgs'],
        summary: "Change a member's role",
        params: MemberParams,
        body: Type.Object({ role: Type.Optional(Role) }, { additionalProperties: false }),
        response: { 200: MemberViewSchema },
      },
    },
    async (request) => {
      const { user } = userOf(request);
      const { orgId, userId } = request.params;
      if (request.body.role === undefined) {
        const member = (await services.orgs.listMembers(orgId)).find((m) => m.id === userId);
        if (!member) throw new AppError('not_found');
        return member;
      }
      return services.orgs.changeRole(orgId, user, userId, request.body.role, request.requestContext);
    },
  );

  app.delete(
    '/v1/orgs/:orgId/members/:userId',
    { config: { auth: 'user', role: 'admin' }, schema: { tags: ['orgs'], summary: 'Remove a member', params: MemberParams } },
    async (request, reply) => {
      await removeMember(services, request);
      return reply.status(204).send();
    },
  );

  app.post(
    '/v1/orgs/:orgId/invitations',
    {
      config: { auth: 'user', role: 'admin' },
      schema: {
        tags: ['orgs'],
        summary: 'Invite someone by email',
        params: OrgIdParams,
        body: Type.Object({ email: Email, role: Role }, { additionalProperties: false }),
        response: { 201: Type.Object({ invitationId: Type.String() }) },
      },
    },
    async (request, reply) => {
      const { user } = userOf(request);
      const org = await services.orgs.get(request.params.orgId);
      const invitationId = await services.orgs.invite(org, user, request.body.email, request.body.role, request.requestContext);
      return reply.status(201).send({ invitationId });
    },
  );

  app.put(
    '/v1/internal/orgs/:orgId/plan',
    {
      config: { auth: 'service', scope: 'plans:write' },
      schema: {
        tags: ['internal'],
        summary: "Set an organization's plan (billing)",
        params: OrgIdParams,
        body: Type.Object({ plan: Type.Union([Type.Literal('free'), Type.Literal('pro'), Type.Literal('enterprise')]) }, { additionalProperties: false }),
        response: { 200: OrgViewSchema },
      },
    },
    async (request) => {
      const principal = request.principal;
      const actorId = principal?.kind === 'service' ? principal.token.id : null;
      const org = await services.orgs.setPlan(request.params.orgId, request.body.plan, { type: 'service', id: actorId });
      return services.orgs.view(org);
    },
  );
}
