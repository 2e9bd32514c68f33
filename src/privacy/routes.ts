import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../app.js';
import { clearSessionCookie } from '../http/cookies.js';
import { userOf } from '../http/policy.js';
import { Email, MemberParams, OpaqueToken, PersonName, UserView } from '../http/schemas.js';
import { AppError } from '../platform/errors.js';
import { publicUser, type User } from '../users/user.js';
import type { PrivacyRequest } from './privacy-service.js';

const ExportDocumentSchema = Type.Object(
  {
    schemaVersion: Type.Integer(),
    generatedAt: Type.String(),
    subject: Type.Object({ userId: Type.String(), email: Type.String(), orgId: Type.Union([Type.String(), Type.Null()]) }),
    requestedBy: Type.Object({ userId: Type.String(), via: Type.String() }),
  },
  {
    additionalProperties: true,
    description:
      'Everything held about the person. Besides the fields above, one key per section: profile, organization, invitations, sessions, ' +
      'passwordResets, loginThrottle, mfa, ssoIdentities, ssoBreakGlass, staff, staffAccessRequests, staffAccessDecisions, consents, ' +
      'privacyRequests, auditEvents. Never secrets or hashes.',
  },
);
const Accepted = Type.Object({ status: Type.Literal('completed'), userId: Type.String(), organizationDeleted: Type.Boolean() });
const RestrictionView = Type.Object({ userId: Type.String(), restricted: Type.Boolean() });
const ConsentsView = Type.Object({ marketing: Type.Boolean(), saleOrShare: Type.Boolean(), updatedAt: Type.Union([Type.String(), Type.Null()]) });
/** E.164 or a readable local form: digits with spaces, dots, dashes or parentheses. */
const Phone = Type.String({ minLength: 3, maxLength: 32, pattern: '^\\+?[0-9][0-9 ().-]{1,30}[0-9]$' });

/**
 * Privacy rights (API.md "Privacy"): self-service under `/v1/me`, and by an
 * organization's owners/admins for their members under
 * `/v1/orgs/:orgId/members/:userId` (tenant isolation and role come from the
 * route policy; a user of another organization is `404`).
 */
export function privacyRoutes(scope: FastifyInstance, services: Services): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const cookies = { secure: services.config.secureCookies };
  const credentialLimit = { rateLimit: { max: services.config.rateLimitPerIpPerMinute, timeWindow: 60_000 } };

  const self = (request: FastifyRequest): PrivacyRequest => {
    const { user } = userOf(request);
    return { actor: user, target: user, context: request.requestContext };
  };
  const forMember = async (request: FastifyRequest<{ Params: { orgId: string; userId: string } }>): Promise<PrivacyRequest> => {
    const { user } = userOf(request);
    const target = await services.orgs.member(request.params.orgId, request.params.userId);
    return { actor: user, target, context: request.requestContext };
  };
  const attachment = (user: User): string => `attachment; filename="cleverom-export-${user.id}.json"`;

  app.get(
    '/v1/me/export',
    {
      config: { auth: 'user' },
      schema: { tags: ['privacy'], summary: 'Download everything held about you (GDPR Art. 15/20)', response: { 200: ExportDocumentSchema } },
    },
    async (request, reply) => {
      const privacyRequest = self(request);
      const document = await services.privacy.export(privacyRequest);
      return reply.header('content-disposition', attachment(privacyRequest.target)).send(document);
    },
  );

  app.get(
    '/v1/orgs/:orgId/members/:userId/export',
    {
      config: { auth: 'user', role: 'admin' },
      schema: { tags: ['privacy'], summary: "Export a member's data (as controller)", params: MemberParams, response: { 200: ExportDocumentSchema } },
    },
    async (request, reply) => {
      const privacyRequest = await forMember(request);
      const document = await services.privacy.export(privacyRequest);
      return reply.header('content-disposition', attachment(privacyRequest.target)).send(document);
    },
  );

  app.post(
    '/v1/me/erasure',
    {
      config: { auth: 'user', fresh: true },
      schema: {
        tags: ['privacy'],
        summary: 'Erase your account and personal data (GDPR Art. 17); needs fresh reauthentication',
        description: 'The last owner of an organization gets 409 conflict. When nobody else is in the organization, ?deleteOrganization=true deletes it too.',
        querystring: Type.Object({ deleteOrganization: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])) }, { additionalProperties: false }),
        response: { 202: Accepted },
      },
    },
    async (request, reply) => {
      const privacyRequest = self(request);
      const { organizationDeleted } = await services.privacy.erase(privacyRequest, request.query.deleteOrganization === 'true' ? 'delete_if_sole_member' : 'keep');
      clearSessionCookie(reply, cookies);
      return reply.status(202).send({ status: 'completed', userId: privacyRequest.target.id, organizationDeleted });
    },
  );

  app.post(
    '/v1/orgs/:orgId/members/:userId/erasure',
    {
      config: { auth: 'user', role: 'admin' },
      schema: { tags: ['privacy'], summary: "Erase a member's account and personal data (as controller)", params: MemberParams, response: { 202: Accepted } },
    },
    async (request, reply) => {
      const privacyRequest = await forMember(request);
      const erasingSelf = privacyRequest.actor.id === privacyRequest.target.id;
      // The same rule as POST /v1/me/erasure when the admin names themselves.
      if (erasingSelf && !services.sessions.isRecentlyAuthenticated(userOf(request).session, 'any')) throw new AppError('reauthentication_required');
      const { organizationDeleted } = await services.privacy.erase(privacyRequest, 'keep');
      if (erasingSelf) clearSessionCookie(reply, cookies);
      return reply.status(202).send({ status: 'completed', userId: privacyRequest.target.id, organizationDeleted });
    },
  );

  app.post(
    '/v1/orgs/:orgId/members/:userId/restriction',
    {
      config: { auth: 'user', role: 'admin' },
      schema: {
        tags: ['privacy'],
        summary: "Restrict or lift the processing of a member's account (GDPR Art. 18)",
        params: MemberParams,
        body: Type.Object({ restricted: Type.Boolean() }, { additionalProperties: false }),
        response: { 200: RestrictionView },
      },
    },
    async (request, reply) => {
      const privacyRequest = await forMember(request);
      await services.privacy.setRestriction(privacyRequest, request.body.restricted);
      if (request.body.restricted && privacyRequest.actor.id === privacyRequest.target.id) clearSessionCookie(reply, cookies);
      return { userId: privacyRequest.target.id, restricted: request.body.restricted };
    },
  );

  app.post(
    '/v1/me/restriction',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['privacy'],
        summary: 'Restrict the processing of your account (GDPR Art. 18); a lift token is emailed to you',
        body: Type.Object({ restricted: Type.Literal(true) }, { additionalProperties: false }),
        response: { 200: RestrictionView },
      },
    },
    async (request, reply) => {
      const privacyRequest = self(request);
      await services.privacy.setRestriction(privacyRequest, true);
      clearSessionCookie(reply, cookies);
      return { userId: privacyRequest.target.id, restricted: true };
    },
  );

  app.post(
    '/v1/restriction/lift',
    {
      config: credentialLimit,
      schema: {
        tags: ['privacy'],
        summary: 'Lift a restriction you asked for, with the emailed token',
        body: Type.Object({ token: OpaqueToken }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      await services.privacy.liftWithToken(request.body.token, request.requestContext);
      return reply.status(204).send();
    },
  );

  app.patch(
    '/v1/me',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['privacy'],
        summary: 'Correct your name, phone or email (GDPR Art. 16); a new email is confirmed by a mailed link',
        body: Type.Object(
          { name: Type.Optional(PersonName), phone: Type.Optional(Type.Union([Phone, Type.Null()])), email: Type.Optional(Email) },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: Type.Object({ user: UserView, pendingEmail: Type.Union([Type.String(), Type.Null()]) }) },
      },
    },
    async (request) => {
      const { user, session } = userOf(request);
      // Changing the address that password resets go to needs a fresh authentication.
      if (request.body.email !== undefined && !services.sessions.isRecentlyAuthenticated(session, 'any')) throw new AppError('reauthentication_required');
      const result = await services.privacy.rectify(user, request.body, request.requestContext);
      return { user: publicUser(result.user), pendingEmail: result.pendingEmail };
    },
  );

  app.post(
    '/v1/me/email/confirm',
    {
      config: { auth: 'user', ...credentialLimit },
      schema: {
        tags: ['privacy'],
        summary: 'Confirm a new email address with the token mailed to it',
        body: Type.Object({ token: OpaqueToken }, { additionalProperties: false }),
        response: { 200: Type.Object({ user: UserView }) },
      },
    },
    async (request) => {
      const { user } = userOf(request);
      const updated = await services.privacy.confirmEmail(user, request.body.token, request.requestContext);
      return { user: publicUser(updated) };
    },
  );

  app.get(
    '/v1/me/consents',
    {
      config: { auth: 'user' },
      schema: { tags: ['privacy'], summary: 'Your consents (marketing, sale or sharing of personal data)', response: { 200: ConsentsView } },
    },
    async (request) => {
      const { user } = userOf(request);
      const state = await services.privacy.consents(user, request.requestContext);
      return { marketing: state.marketing, saleOrShare: state.saleOrShare, updatedAt: state.updatedAt?.toISOString() ?? null };
    },
  );

  app.put(
    '/v1/me/consents',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['privacy'],
        summary: 'Give or withdraw consent; each change is kept with its time and source',
        body: Type.Object(
          { marketing: Type.Optional(Type.Boolean()), saleOrShare: Type.Optional(Type.Boolean()) },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: ConsentsView },
      },
    },
    async (request) => {
      const { user } = userOf(request);
      const state = await services.privacy.setConsents(user, request.body, request.requestContext);
      return { marketing: state.marketing, saleOrShare: state.saleOrShare, updatedAt: state.updatedAt?.toISOString() ?? null };
    },
  );
}
