import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../../app.js';
import { SESSION_TOKEN_HEADER, clearSessionCookie, setMfaCookie, setSessionCookie } from '../../http/cookies.js';
import { userOf } from '../../http/policy.js';
import { Email, OpaqueToken, Password, SessionSummary, UserView } from '../../http/schemas.js';
import { AppError } from '../../platform/errors.js';
import { publicUser } from '../../users/user.js';
import { sessionView } from '../session/session.js';

export function passwordRoutes(scope: FastifyInstance, services: Services): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const cookies = { secure: services.config.secureCookies };
  const credentialLimit = { rateLimit: { max: services.config.rateLimitPerIpPerMinute, timeWindow: 60_000 } };

  app.post(
    '/v1/login',
    {
      config: credentialLimit,
      schema: {
        tags: ['auth'],
        summary: 'Log in with email and password',
        body: Type.Object({ email: Email, password: Password }, { additionalProperties: false }),
        response: { 200: Type.Object({ user: UserView, session: SessionSummary }) },
      },
    },
    async (request, reply) => {
      const result = await services.passwords.login(request.body.email, request.body.password, request.requestContext);
      switch (result.kind) {
        case 'session':
          setSessionCookie(reply, cookies, result.session);
          return { user: publicUser(result.user), session: sessionView(result.session.session) };
        case 'mfa_required':
          setMfaCookie(reply, cookies, result.pendingToken, result.expiresAt);
          throw new AppError('mfa_required', { extra: { challengeId: result.challengeId } });
        case 'sso_required':
          throw new AppError('sso_required', { extra: { ssoUrl: result.ssoUrl } });
      }
    },
  );

  app.post('/v1/logout', { config: { auth: 'user', duringMfaEnrolment: true }, schema: { tags: ['auth'], summary: 'Log out (revoke this session)' } }, async (request, reply) => {
    const { session, user } = userOf(request);
    await services.sessions.revoke(user, session.id, 'auth.logout', request.requestContext);
    clearSessionCookie(reply, cookies);
    return reply.status(204).send();
  });

  app.post(
    '/v1/me/password',
    {
      config: { auth: 'user', ...credentialLimit },
      schema: {
        tags: ['auth'],
        summary: 'Change password (other sessions are revoked)',
        body: Type.Object({ currentPassword: Password, newPassword: Password }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      const { user, session } = userOf(request);
      await services.passwords.changePassword({
        user,
        session,
        currentPassword: request.body.currentPassword,
        newPassword: request.body.newPassword,
        context: request.requestContext,
      });
      return reply.status(204).send();
    },
  );

  app.post(
    '/v1/password-reset',
    {
      config: credentialLimit,
      schema: {
        tags: ['auth'],
        summary: 'Request a password reset email (always 202)',
        body: Type.Object({ email: Email }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      await services.passwords.requestReset(request.body.email, request.requestContext);
      return reply.status(202).send();
    },
  );

  app.post(
    '/v1/password-reset/confirm',
    {
      config: credentialLimit,
      schema: {
        tags: ['auth'],
        summary: 'Set a new password with a reset token (all sessions revoked)',
        body: Type.Object({ token: OpaqueToken, newPassword: Password }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      await services.passwords.confirmReset(request.body.token, request.body.newPassword, request.requestContext);
      return reply.status(204).send();
    },
  );

  app.post(
    '/v1/me/reauthenticate',
    {
      config: { auth: 'user', ...credentialLimit },
      schema: {
        tags: ['auth'],
        summary: 'Confirm identity again (fresh for 10 minutes)',
        body: Type.Object(
          { password: Type.Optional(Password), code: Type.Optional(Type.String({ pattern: '^[0-9]{6}$' })) },
          { additionalProperties: false, minProperties: 1 },
        ),
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const next = await services.passwords.reauthenticate({
        user: principal.user,
        session: principal.session,
        password: request.body.password,
        code: request.body.code,
        context: request.requestContext,
      });
      // ASVS 7.2.4: a new token; the old one has ended. Browsers get it as the
      // cookie; a bearer client reads it from the header (docs/api.md). The
      // header is never sent to a cookie caller, so page scripts cannot read
      // an HttpOnly session token from it.
      setSessionCookie(reply, cookies, next);
      if (principal.via === 'bearer') reply.header(SESSION_TOKEN_HEADER, next.token);
      return reply.status(204).send();
    },
  );
}
