import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../app.js';
import { userOf } from '../http/policy.js';
import { Email, Id, OrgIdParams } from '../http/schemas.js';
import { setSsoCookie, ssoCookieOf } from './binding-cookie.js';

/**
 * SSO login start (OIDC, and SAML through `SamlLoginService.begin`) and the break-glass owners
 * of enforced SSO.
 */
export function ssoRoutes(scope: FastifyInstance, services: Services): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const cookies = { secure: services.config.secureCookies };
  const credentialLimit = { rateLimit: { max: services.config.rateLimitPerIpPerMinute, timeWindow: 60_000 } };

  app.get(
    '/v1/sso/start',
    {
      config: credentialLimit,
      schema: {
        tags: ['sso'],
        summary: 'Start single sign-on: by email (home-realm discovery by verified domain) or by connectionId; 302 to the IdP',
        querystring: Type.Object(
          {
            email: Type.Optional(Email),
            connectionId: Type.Optional(Id),
            returnTo: Type.Optional(Type.String({ maxLength: 2048, description: 'Relative path on this site (default /)' })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const started = await services.ssoLogin.start({ ...request.query, bindingToken: ssoCookieOf(request, cookies) });
      setSsoCookie(reply, cookies, started.bindingToken, started.expiresAt);
      return reply.header('cache-control', 'no-store').redirect(started.redirectUrl, 302);
    },
  );

  const BreakGlassParams = Type.Object({ orgId: Id, userId: Id });

  app.get(
    '/v1/orgs/:orgId/sso/break-glass',
    {
      config: { auth: 'user', role: 'admin', feature: 'sso' },
      schema: {
        tags: ['sso'],
        summary: 'Owners who keep password login while SSO is enforced',
        params: OrgIdParams,
        response: { 200: Type.Object({ accounts: Type.Array(Type.Object({ userId: Type.String(), createdAt: Type.String() })) }) },
      },
    },
    async (request) => ({ accounts: await services.ssoEnforcement.listBreakGlass(request.params.orgId) }),
  );

  app.put(
    '/v1/orgs/:orgId/sso/break-glass/:userId',
    {
      config: { auth: 'user', role: 'owner', feature: 'sso', fresh: true },
      schema: { tags: ['sso'], summary: 'Flag an owner as a break-glass account (password login stays possible, audited at each use)', params: BreakGlassParams },
    },
    async (request, reply) => {
      const { user } = userOf(request);
      const org = await services.orgs.get(request.params.orgId);
      await services.ssoEnforcement.setBreakGlass(org, user, request.params.userId, true, request.requestContext);
      return reply.status(204).send();
    },
  );

  app.delete(
    '/v1/orgs/:orgId/sso/break-glass/:userId',
    {
      config: { auth: 'user', role: 'owner', feature: 'sso', fresh: true },
      schema: { tags: ['sso'], summary: 'Remove the break-glass flag of an owner', params: BreakGlassParams },
    },
    async (request, reply) => {
      const { user } = userOf(request);
      const org = await services.orgs.get(request.params.orgId);
      await services.ssoEnforcement.setBreakGlass(org, user, request.params.userId, false, request.requestContext);
      return reply.status(204).send();
    },
  );
}
