import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../../app.js';
import { clearMfaCookie, mfaCookieOf, setSessionCookie } from '../../http/cookies.js';
import { userOf } from '../../http/policy.js';
import { MemberParams, SessionSummary, UserView } from '../../http/schemas.js';
import { publicUser } from '../../users/user.js';
import { sessionView } from '../session/session.js';

const Code = Type.String({ pattern: '^[0-9]{6}$', description: 'A 6-digit TOTP code' });
const RecoveryCode = Type.String({ minLength: 8, maxLength: 40 });
const RecoveryCodes = Type.Object({ recoveryCodes: Type.Array(Type.String()) });

export function totpRoutes(scope: FastifyInstance, services: Services): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const cookies = { secure: services.config.secureCookies };
  const credentialLimit = { rateLimit: { max: services.config.rateLimitPerIpPerMinute, timeWindow: 60_000 } };

  app.post(
    '/v1/login/mfa',
    {
      config: credentialLimit,
      schema: {
        tags: ['auth'],
        summary: 'Second login step: a TOTP code or a recovery code (with the pending cookie)',
        body: Type.Union([
          Type.Object({ code: Code }, { additionalProperties: false }),
          Type.Object({ recoveryCode: RecoveryCode }, { additionalProperties: false }),
        ]),
        response: { 200: Type.Object({ user: UserView, session: SessionSummary }) },
      },
    },
    async (request, reply) => {
      const result = await services.totp.completeLogin(mfaCookieOf(request, cookies), request.body, request.requestContext);
      clearMfaCookie(reply, cookies);
      setSessionCookie(reply, cookies, result.session);
      return { user: publicUser(result.user), session: sessionView(result.session.session) };
    },
  );

  app.get(
    '/v1/me/mfa',
    {
      config: { auth: 'user', duringMfaEnrolment: true },
      schema: {
        tags: ['mfa'],
        summary: 'Your second-factor status',
        response: {
          200: Type.Object({
            totp: Type.Object({ status: Type.String(), confirmedAt: Type.Union([Type.String(), Type.Null()]) }),
            recoveryCodesRemaining: Type.Integer(),
          }),
        },
      },
    },
    async (request) => services.totp.status(userOf(request).user),
  );

  app.post(
    '/v1/me/mfa/totp',
    {
      config: { auth: 'user', feature: 'mfa_totp', duringMfaEnrolment: true },
      schema: {
        tags: ['mfa'],
        summary: 'Start TOTP enrolment (secret, otpauth URL, QR code)',
        response: { 201: Type.Object({ secret: Type.String(), otpauthUrl: Type.String(), qrSvg: Type.String() }) },
      },
    },
    async (request, reply) => {
      const enrolment = await services.totp.enrol(userOf(request).user, request.requestContext);
      return reply.status(201).send(enrolment);
    },
  );

  app.post(
    '/v1/me/mfa/totp/confirm',
    {
      config: { auth: 'user', feature: 'mfa_totp', duringMfaEnrolment: true, ...credentialLimit },
      schema: {
        tags: ['mfa'],
        summary: 'Confirm enrolment with a code; returns 10 recovery codes once',
        body: Type.Object({ code: Code }, { additionalProperties: false }),
        response: { 200: RecoveryCodes },
      },
    },
    async (request, reply) => {
      const { user, session } = userOf(request);
      const result = await services.totp.confirm(user, session, request.body.code, request.requestContext);
      // AAL changed: the client gets a new session token.
      setSessionCookie(reply, cookies, result.session);
      return { recoveryCodes: result.recoveryCodes };
    },
  );

  app.delete(
    '/v1/me/mfa/totp',
    {
      config: { auth: 'user', fresh: true, ...credentialLimit },
      schema: {
        tags: ['mfa'],
        summary: 'Turn off TOTP (fresh reauthentication and a current code)',
        body: Type.Object({ code: Code }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      await services.totp.disable(userOf(request).user, request.body.code, request.requestContext);
      return reply.status(204).send();
    },
  );

  app.post(
    '/v1/me/mfa/recovery-codes',
    {
      config: { auth: 'user', fresh: true },
      schema: { tags: ['mfa'], summary: 'Regenerate recovery codes (old ones void)', response: { 200: RecoveryCodes } },
    },
    async (request) => ({ recoveryCodes: await services.totp.regenerateRecoveryCodes(userOf(request).user, request.requestContext) }),
  );

  app.delete(
    '/v1/orgs/:orgId/members/:userId/mfa',
    {
      config: { auth: 'user', role: 'admin', fresh: true },
      schema: { tags: ['mfa'], summary: "Reset a member's second factor (lost device)", params: MemberParams },
    },
    async (request, reply) => {
      const { user } = userOf(request);
      const member = await services.orgs.member(request.params.orgId, request.params.userId);
      await services.totp.resetByAdmin(user, member, request.requestContext);
      return reply.status(204).send();
    },
  );
}
