import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../../app.js';
import { setSessionCookie } from '../../http/cookies.js';
import { Id } from '../../http/schemas.js';
import { parseUrlencoded } from '../../http/text.js';
import { AppError } from '../../platform/errors.js';

/**
 * The form body limit of the ACS: a 256 KiB response (SECURITY.md "body
 * limits") is ~342 KiB of base64, and form encoding can triple `+`, `/`
 * and `=`. Larger bodies are refused by Fastify before they are read
 * (413); the decoded response is held to 256 KiB by the service (400).
 */
export const ACS_BODY_LIMIT = 1_100_000;

const ConnectionIdParams = Type.Object({ connectionId: Id });

/**
 * SAML SP endpoints of each connection: its metadata and its Assertion
 * Consumer Service (saml-bindings §3.5 HTTP-POST). Registered in their own
 * encapsulated scope, so the urlencoded parser below serves the ACS only
 * (the JSON API keeps its JSON-only parser; the pages have their own).
 */
export function samlRoutes(scope: FastifyInstance, services: Services): void {
  const credentialLimit = { rateLimit: { max: services.config.rateLimitPerIpPerMinute, timeWindow: 60_000 } };
  const cookies = { secure: services.config.secureCookies };

  scope.register(async (child) => {
    const app = child.withTypeProvider<TypeBoxTypeProvider>();
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer', bodyLimit: ACS_BODY_LIMIT }, (_request, body, done) => {
      // Strict UTF-8, as every body (src/http/text.ts).
      const parsed = parseUrlencoded(body as Buffer);
      if ('refusal' in parsed) {
        done(parsed.refusal, undefined);
        return;
      }
      const params = parsed.fields;
      const fields: Record<string, string> = {};
      for (const name of new Set(params.keys())) {
        const values = params.getAll(name);
        // One SAMLResponse, one RelayState: a repeated field is not guessed at.
        if (values.length !== 1) {
          done(new AppError('malformed_body', { publicDetail: 'Each form field may appear once.' }), undefined);
          return;
        }
        fields[name] = values[0] ?? '';
      }
      done(null, fields);
    });

    app.get(
      '/v1/sso/saml/:connectionId/metadata',
      {
        schema: {
          tags: ['sso'],
          summary: 'SAML SP metadata of a connection (entity id, HTTP-POST ACS, NameID format); give it to the IdP',
          params: ConnectionIdParams,
        },
      },
      async (request, reply) => {
        const xml = await services.ssoSaml.metadata(request.params.connectionId);
        return reply.type('application/samlmetadata+xml; charset=utf-8').header('cache-control', 'public, max-age=300').send(xml);
      },
    );

    app.post(
      '/v1/sso/saml/:connectionId/acs',
      {
        // The IdP's auto-submitted form arrives from the IdP's origin (or `null`), and
        // carries no SameSite=Lax cookie: the Origin/cookie gate of policy.ts cannot
        // apply. The response authenticates itself instead — its signature by the
        // connection's IdP, an InResponseTo naming a single-use request we stored, and
        // the assertion replay cache (SECURITY.md "SAML state").
        config: { ...credentialLimit, crossSitePost: true },
        bodyLimit: ACS_BODY_LIMIT,
        schema: {
          tags: ['sso'],
          summary: 'SAML Assertion Consumer Service (HTTP-POST): on success a session cookie and 302; else 400 sso_failed',
          params: ConnectionIdParams,
          consumes: ['application/x-www-form-urlencoded'],
          body: Type.Object({
            SAMLResponse: Type.String({ minLength: 1, maxLength: ACS_BODY_LIMIT }),
            RelayState: Type.Optional(Type.String({ maxLength: 4096 })),
          }),
        },
      },
      async (request, reply) => {
        const result = await services.ssoSaml.acs({
          connectionId: request.params.connectionId,
          samlResponse: request.body.SAMLResponse,
          relayState: request.body.RelayState,
          context: request.requestContext,
        });
        setSessionCookie(reply, cookies, result.session);
        // API.md: 302 (browsers follow a POST's 302 with a GET, RFC 9110 §15.4.3).
        return reply.header('cache-control', 'no-store').redirect(result.returnTo, 302);
      },
    );
  });
}
