import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../../app.js';
import { setSessionCookie } from '../../http/cookies.js';
import { clearSsoCookie, ssoCookieOf } from '../binding-cookie.js';

const Param = Type.Optional(Type.String({ maxLength: 4096 }));

/** The OIDC redirect URI: PUBLIC_URL + `/v1/sso/oidc/callback`. */
export function oidcRoutes(scope: FastifyInstance, services: Services): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const cookies = { secure: services.config.secureCookies };
  const credentialLimit = { rateLimit: { max: services.config.rateLimitPerIpPerMinute, timeWindow: 60_000 } };

  app.get(
    '/v1/sso/oidc/callback',
    {
      config: credentialLimit,
      schema: {
        tags: ['sso'],
        summary: 'OIDC authorization response: on success a session cookie and 302 to returnTo; else 400 sso_failed',
        // IdPs may add parameters (session_state, …): they are passed through to the checks, not refused here.
        querystring: Type.Object({ code: Param, state: Param, iss: Param, error: Param, error_description: Param }),
      },
    },
    async (request, reply) => {
      const at = request.url.indexOf('?');
      const rawQuery = at === -1 ? '' : request.url.slice(at + 1);
      const result = await services.ssoLogin.callback({ rawQuery, bindingToken: ssoCookieOf(request, cookies), context: request.requestContext });
      clearSsoCookie(reply, cookies);
      setSessionCookie(reply, cookies, result.session);
      return reply.header('cache-control', 'no-store').redirect(result.returnTo, 302);
    },
  );
}
