import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Bowser from 'bowser';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../../app.js';
import { userOf } from '../../http/policy.js';
import { Id, OrgViewSchema, SessionSummary, UserView } from '../../http/schemas.js';
import { AppError } from '../../platform/errors.js';
import { publicUser } from '../../users/user.js';
import { sessionView, type SessionContext } from './session.js';

const SessionListItem = Type.Object({
  id: Type.String(),
  current: Type.Boolean(),
  createdAt: Type.String(),
  lastSeenAt: Type.String(),
  expiresAt: Type.String(),
  ip: Type.Union([Type.String(), Type.Null()]),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  device: Type.String(),
  authMethod: Type.String(),
  aal: Type.Integer(),
});

/** "Firefox 128 on Linux" from a user agent, for the sessions list. */
export function describeDevice(userAgent: string | null): string {
  if (!userAgent) return 'Unknown device';
  const parsed = Bowser.parse(userAgent);
  const browser = [parsed.browser.name, parsed.browser.version?.split('.')[0]].filter(Boolean).join(' ');
  const os = parsed.os.name ?? '';
  if (!browser && !os) return userAgent.slice(0, 60);
  return os ? `${browser || 'Unknown browser'} on ${os}` : browser;
}

export function sessionRoutes(scope: FastifyInstance, services: Services): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  /**
   * Performance (issue 9): `/v1/me` is the session check clients poll. A
   * remembered session (session-repository.ts) is the same frozen session,
   * user and organization from request to request, so its answer is
   * serialized once, by the route's own schema serializer, and sent as that
   * JSON text until any of the three changes (any commit replaces them).
   */
  const meAnswers = new WeakMap<SessionContext['session'], { user: SessionContext['user']; org: SessionContext['org']; json: string }>();

  app.get(
    '/v1/me',
    {
      config: { auth: 'user', duringMfaEnrolment: true },
      schema: {
        tags: ['me'],
        summary: 'The caller, their organization and session',
        response: {
          200: Type.Object({
            user: UserView,
            organization: Type.Union([Type.Pick(OrgViewSchema, ['id', 'name', 'plan', 'features']), Type.Null()]),
            session: SessionSummary,
          }),
        },
      },
    },
    async (request, reply) => {
      const { user, org, session } = userOf(request);
      let answer = meAnswers.get(session);
      if (answer === undefined || answer.user !== user || answer.org !== org) {
        const json = reply.serialize({
          user: publicUser(user),
          organization: org ? { id: org.id, name: org.name, plan: org.plan, features: services.plans.featuresOf(org.plan) } : null,
          session: sessionView(session),
        });
        if (typeof json !== 'string') throw new Error('the /v1/me serializer did not give text');
        answer = { user, org, json };
        meAnswers.set(session, answer);
      }
      // A string with a JSON content type is sent as it is (already serialized above).
      return reply.type('application/json; charset=utf-8').send(answer.json as never);
    },
  );

  app.get(
    '/v1/me/sessions',
    {
      config: { auth: 'user' },
      schema: { tags: ['me'], summary: 'Your sessions and devices', response: { 200: Type.Object({ sessions: Type.Array(SessionListItem) }) } },
    },
    async (request) => {
      const { user, session: current } = userOf(request);
      const list = await services.sessions.list(user.id);
      const now = services.clock.now().getTime();
      return {
        sessions: list
          .filter((s) => s.expiresAt.getTime() > now && now - s.lastSeenAt.getTime() < s.idleTimeoutMs)
          .map((s) => ({
            id: s.id,
            current: s.id === current.id,
            createdAt: s.createdAt.toISOString(),
            lastSeenAt: s.lastSeenAt.toISOString(),
            expiresAt: s.expiresAt.toISOString(),
            ip: s.ip,
            userAgent: s.userAgent,
            device: describeDevice(s.userAgent),
            authMethod: s.authMethod,
            aal: s.aal,
          })),
      };
    },
  );

  app.delete(
    '/v1/me/sessions/:id',
    { config: { auth: 'user' }, schema: { tags: ['me'], summary: 'Sign out one session', params: Type.Object({ id: Id }) } },
    async (request, reply) => {
      const { user } = userOf(request);
      const revoked = await services.sessions.revoke(user, request.params.id, 'session.revoked', request.requestContext);
      if (!revoked) throw new AppError('not_found');
      return reply.status(204).send();
    },
  );

  app.delete(
    '/v1/me/sessions',
    { config: { auth: 'user' }, schema: { tags: ['me'], summary: 'Sign out every other session' } },
    async (request, reply) => {
      const { user, session } = userOf(request);
      await services.sessions.revokeOthers(user, session.id, request.requestContext);
      return reply.status(204).send();
    },
  );
}
