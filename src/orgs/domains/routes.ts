import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../../app.js';
import { userOf } from '../../http/policy.js';
import { Id, OrgIdParams } from '../../http/schemas.js';

const DomainName = Type.String({ minLength: 3, maxLength: 253, description: 'A domain name such as example.com (IDNs in punycode)' });
const DomainParams = Type.Object({ orgId: Id, domain: DomainName });
const DomainViewSchema = Type.Object({
  domain: Type.String(),
  verificationToken: Type.String(),
  txtRecord: Type.Object({ name: Type.String(), type: Type.Literal('TXT'), value: Type.String() }),
  verified: Type.Boolean(),
  verifiedAt: Type.Union([Type.String(), Type.Null()]),
  verificationMethod: Type.Union([Type.Literal('dns'), Type.Literal('manual'), Type.Null()]),
  createdAt: Type.String(),
});

/** Organization domains (feature `sso`): claim, verify by DNS TXT, list, release. */
export function domainRoutes(scope: FastifyInstance, services: Services): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const gate = { auth: 'user', role: 'admin', feature: 'sso' } as const;

  app.get(
    '/v1/orgs/:orgId/domains',
    {
      config: gate,
      schema: { tags: ['sso'], summary: "The organization's domains", params: OrgIdParams, response: { 200: Type.Object({ domains: Type.Array(DomainViewSchema) }) } },
    },
    async (request) => ({ domains: await services.domains.list(request.params.orgId) }),
  );

  app.post(
    '/v1/orgs/:orgId/domains',
    {
      config: gate,
      schema: {
        tags: ['sso'],
        summary: 'Claim a domain; publish the returned TXT record, then verify',
        params: OrgIdParams,
        body: Type.Object({ domain: DomainName }, { additionalProperties: false }),
        response: { 201: DomainViewSchema },
      },
    },
    async (request, reply) => {
      const view = await services.domains.claim(request.params.orgId, userOf(request).user, request.body.domain, request.requestContext);
      return reply.status(201).send(view);
    },
  );

  app.post(
    '/v1/orgs/:orgId/domains/:domain/verify',
    {
      config: gate,
      schema: {
        tags: ['sso'],
        summary: 'Verify a claimed domain by its DNS TXT record at _cleverom-challenge.<domain>',
        params: DomainParams,
        response: { 200: DomainViewSchema },
      },
    },
    async (request) => services.domains.verifyByDns(request.params.orgId, userOf(request).user, request.params.domain, request.requestContext),
  );

  app.delete(
    '/v1/orgs/:orgId/domains/:domain',
    { config: gate, schema: { tags: ['sso'], summary: 'Release a domain claim', params: DomainParams } },
    async (request, reply) => {
      await services.domains.release(request.params.orgId, userOf(request).user, request.params.domain, request.requestContext);
      return reply.status(204).send();
    },
  );
}

/**
 * `security_admin` staff verify a domain by hand when DNS cannot be used
 * (API.md "Single sign-on"); audited as a manual verification by that staff member.
 */
export function staffDomainRoutes(scope: FastifyInstance, services: Services): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  app.post(
    '/v1/staff/orgs/:orgId/domains/:domain/verify',
    {
      config: { auth: 'user', staff: 'security_admin' },
      schema: {
        tags: ['staff'],
        summary: "Verify an organization's domain manually (security_admin, audited)",
        params: DomainParams,
        body: Type.Object({ reason: Type.String({ minLength: 5, maxLength: 500 }) }, { additionalProperties: false }),
        response: { 200: DomainViewSchema },
      },
    },
    async (request) => {
      const { user } = userOf(request);
      const org = await services.orgs.get(request.params.orgId);
      return services.domains.verifyManually({
        orgId: org.id,
        domain: request.params.domain,
        actor: { type: 'staff', id: user.id },
        reason: request.body.reason,
        context: request.requestContext,
      });
    },
  );
}
