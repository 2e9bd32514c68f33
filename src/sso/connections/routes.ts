import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../../app.js';
import { userOf } from '../../http/policy.js';
import { Id, OrgIdParams } from '../../http/schemas.js';

const NullableString = Type.Union([Type.String(), Type.Null()]);
const ConnectionName = Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' });
const Issuer = Type.String({ minLength: 8, maxLength: 2048, description: 'OpenID Provider issuer identifier (https)' });
const ClientId = Type.String({ minLength: 1, maxLength: 512 });
const ClientSecret = Type.String({ minLength: 1, maxLength: 4096, description: 'Sealed at rest; never returned' });
// RFC 6749 §3.3 scope-token characters.
const Scopes = Type.Array(Type.String({ minLength: 1, maxLength: 128, pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$' }), { maxItems: 20, uniqueItems: true });
const Domains = Type.Array(Type.String({ minLength: 3, maxLength: 253 }), { maxItems: 50 });
const ConnectionParams = Type.Object({ orgId: Id, connectionId: Id });
const IdpMetadataXml = Type.String({ minLength: 1, maxLength: 200_000, description: 'SAML IdP metadata (EntityDescriptor); no DTD' });
const IdpEntityId = Type.String({ minLength: 1, maxLength: 1024 });
const IdpSsoUrl = Type.String({ minLength: 8, maxLength: 2048, description: 'SingleSignOnService (HTTP-Redirect binding), https' });
const Certificate = Type.String({ minLength: 1, maxLength: 40_000, description: 'PEM or base64 DER X.509 certificate' });
const IdpCertificate = Type.Union([Certificate, Type.Array(Certificate, { minItems: 1, maxItems: 5 })], { description: 'The IdP signing certificate(s); several for rollover' });
const AllowIdpInitiated = Type.Boolean({ description: 'DANGEROUS, default false: accept IdP-initiated (unsolicited) SAML responses' });
/** Metadata uploads can exceed the 64 KiB JSON default. */
const CONNECTION_BODY_LIMIT = 256 * 1024;

export const ConnectionViewSchema = Type.Object({
  id: Type.String(),
  type: Type.Union([Type.Literal('oidc'), Type.Literal('saml')]),
  name: Type.String(),
  enabled: Type.Boolean(),
  domains: Type.Array(Type.String()),
  issuer: NullableString,
  clientId: NullableString,
  scopes: Type.Array(Type.String()),
  redirectUri: NullableString,
  spEntityId: NullableString,
  acsUrl: NullableString,
  metadataUrl: NullableString,
  idpEntityId: NullableString,
  idpSsoUrl: NullableString,
  idpCertificates: Type.Array(Type.Object({ sha256Fingerprint: Type.String(), subject: Type.String(), notAfter: Type.String() })),
  allowIdpInitiatedSaml: Type.Union([Type.Boolean(), Type.Null()]),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});

/**
 * SSO connections of an organization: owners/admins, feature `sso`;
 * changes need a fresh authentication (API.md: reauthentication for SSO
 * configuration changes).
 */
export function connectionRoutes(scope: FastifyInstance, services: Services): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const read = { auth: 'user', role: 'admin', feature: 'sso' } as const;
  const write = { ...read, fresh: true } as const;

  app.get(
    '/v1/orgs/:orgId/sso/connections',
    {
      config: read,
      schema: { tags: ['sso'], summary: 'SSO connections (secrets are never returned)', params: OrgIdParams, response: { 200: Type.Object({ connections: Type.Array(ConnectionViewSchema) }) } },
    },
    async (request) => ({ connections: await services.ssoConnections.list(request.params.orgId) }),
  );

  app.get(
    '/v1/orgs/:orgId/sso/connections/:connectionId',
    { config: read, schema: { tags: ['sso'], summary: 'One SSO connection', params: ConnectionParams, response: { 200: ConnectionViewSchema } } },
    async (request) => services.ssoConnections.view(await services.ssoConnections.get(request.params.orgId, request.params.connectionId)),
  );

  app.post(
    '/v1/orgs/:orgId/sso/connections',
    {
      config: write,
      bodyLimit: CONNECTION_BODY_LIMIT,
      schema: {
        tags: ['sso'],
        summary: 'Register an OIDC identity provider (issuer discovery runs now) or a SAML one (from its metadata, or entity id + SSO URL + certificate)',
        params: OrgIdParams,
        body: Type.Union([
          Type.Object(
            {
              type: Type.Literal('oidc'),
              name: ConnectionName,
              issuer: Issuer,
              clientId: ClientId,
              clientSecret: ClientSecret,
              scopes: Type.Optional(Scopes),
              domains: Domains,
            },
            { additionalProperties: false },
          ),
          Type.Object(
            {
              type: Type.Literal('saml'),
              name: ConnectionName,
              idpMetadataXml: Type.Optional(IdpMetadataXml),
              idpEntityId: Type.Optional(IdpEntityId),
              idpSsoUrl: Type.Optional(IdpSsoUrl),
              idpCertificate: Type.Optional(IdpCertificate),
              domains: Type.Optional(Domains),
              allowIdpInitiatedSaml: Type.Optional(AllowIdpInitiated),
            },
            { additionalProperties: false },
          ),
        ]),
        response: { 201: ConnectionViewSchema },
      },
    },
    async (request, reply) => {
      const { user } = userOf(request);
      const org = await services.orgs.get(request.params.orgId);
      const view = await services.ssoConnections.create(org, user, request.body, request.requestContext);
      return reply.status(201).send(view);
    },
  );

  app.patch(
    '/v1/orgs/:orgId/sso/connections/:connectionId',
    {
      config: write,
      bodyLimit: CONNECTION_BODY_LIMIT,
      schema: {
        tags: ['sso'],
        summary: 'Enable/disable, rename, change domains; OIDC: rotate the secret or change the issuer (rediscovered); SAML: new metadata, certificate(s), SSO URL or entity id',
        params: ConnectionParams,
        body: Type.Object(
          {
            name: Type.Optional(ConnectionName),
            enabled: Type.Optional(Type.Boolean()),
            domains: Type.Optional(Domains),
            issuer: Type.Optional(Issuer),
            clientId: Type.Optional(ClientId),
            clientSecret: Type.Optional(ClientSecret),
            scopes: Type.Optional(Scopes),
            idpMetadataXml: Type.Optional(IdpMetadataXml),
            idpEntityId: Type.Optional(IdpEntityId),
            idpSsoUrl: Type.Optional(IdpSsoUrl),
            idpCertificate: Type.Optional(IdpCertificate),
            allowIdpInitiatedSaml: Type.Optional(AllowIdpInitiated),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: ConnectionViewSchema },
      },
    },
    async (request) => {
      const { user } = userOf(request);
      const org = await services.orgs.get(request.params.orgId);
      return services.ssoConnections.update(org, user, request.params.connectionId, request.body, request.requestContext);
    },
  );

  app.delete(
    '/v1/orgs/:orgId/sso/connections/:connectionId',
    { config: write, schema: { tags: ['sso'], summary: 'Delete an SSO connection (its identity links go with it)', params: ConnectionParams } },
    async (request, reply) => {
      const { user } = userOf(request);
      const org = await services.orgs.get(request.params.orgId);
      await services.ssoConnections.delete(org, user, request.params.connectionId, request.requestContext);
      return reply.status(204).send();
    },
  );
}
