import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../app.js';
import { STAFF_ACCESS_ACTIONS } from '../audit/routes.js';
import { userOf } from '../http/policy.js';
import { Email, Id, Role } from '../http/schemas.js';
import type { OrgSettings } from '../orgs/org.js';
import { removeMember } from '../orgs/routes.js';
import { FEATURES, type Feature } from '../plans/plans.js';
import { oidcRedirectUri, type ConnectionView } from '../sso/connections/connection.js';
import { formBody, formFailure, planName, validationFailure, type FormFailure } from './forms.js';
import { formatTime, renderPage, seeOther, timeLeft } from './render.js';

const OrgParams = Type.Object({ orgId: Id });
const MemberParams = Type.Object({ orgId: Id, userId: Id });
const RequestParams = Type.Object({ orgId: Id, id: Id, verb: Type.Union([Type.Literal('approve'), Type.Literal('deny')]) });
const ConnectionParams = Type.Object({ orgId: Id, connectionId: Id, verb: Type.Union([Type.Literal('enable'), Type.Literal('disable'), Type.Literal('delete')]) });
const BreakGlassParams = Type.Object({ orgId: Id, userId: Id, verb: Type.Union([Type.Literal('on'), Type.Literal('off')]) });
const DomainParams = Type.Object({ orgId: Id, domain: Type.String({ minLength: 3, maxLength: 253 }), verb: Type.Union([Type.Literal('verify'), Type.Literal('release')]) });

const InviteForm = formBody({ email: Email, role: Role });
const RoleForm = formBody({ role: Role });
const SETTING_KEYS = ['requireMfa', 'enforceSso', 'requireCustomerApproval'] as const;
const SettingForm = formBody({
  setting: Type.Union(SETTING_KEYS.map((k) => Type.Literal(k))),
  value: Type.Union([Type.Literal('on'), Type.Literal('off')]),
});
/** As the API's connection name: a blank one is refused next to the field. */
const ConnectionName = Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' });
const OidcForm = formBody({
  name: ConnectionName,
  issuer: Type.String({ maxLength: 2048 }),
  clientId: Type.String({ maxLength: 512 }),
  clientSecret: Type.String({ maxLength: 4096 }),
  domains: Type.String({ maxLength: 4000 }),
});
/**
 * A SAML connection from pasted IdP metadata, or from the IdP's three values
 * typed by hand (the service refuses both at once, or neither). Lengths as
 * in the API (src/sso/connections/routes.ts).
 */
const SamlForm = formBody({
  name: ConnectionName,
  idpMetadataXml: Type.String({ maxLength: 200_000 }),
  idpEntityId: Type.String({ maxLength: 1024 }),
  idpSsoUrl: Type.String({ maxLength: 2048 }),
  idpCertificate: Type.String({ maxLength: 40_000 }),
  domains: Type.String({ maxLength: 4000 }),
});
/**
 * The SAML form's body limit: metadata is often tens of KiB, and form
 * encoding turns most of XML's punctuation into three bytes each (`<` is
 * `%3C`). 3 × (200 000 + 40 000) characters plus the small fields.
 */
export const SAML_FORM_BODY_LIMIT = 800 * 1024;
const DomainForm = formBody({ domain: Type.String({ maxLength: 253 }) });
const Empty = formBody({});
const RestrictionForm = formBody({ restricted: Type.Union([Type.Literal('on'), Type.Literal('off')]) });

export const FEATURE_NAMES: Record<Feature, string> = {
  mfa_totp: 'Two-factor authentication',
  sso: 'Single sign-on',
  access_approval: 'Customer approval of staff access',
  access_transparency: 'Staff access log',
  audit_export: 'Audit log export',
};

const SETTINGS: { key: keyof OrgSettings; label: string; description: string; feature: Feature }[] = [
  { key: 'requireMfa', label: 'Require two-factor authentication', description: 'Members who log in with a password must set up an authenticator app.', feature: 'mfa_totp' },
  { key: 'enforceSso', label: 'Enforce single sign-on', description: 'Members must log in through your identity provider (break-glass owners excepted).', feature: 'sso' },
  { key: 'requireCustomerApproval', label: 'Approve staff access', description: 'Cleverom staff need your approval as well as ours before they see your data.', feature: 'access_approval' },
];

/** A field left empty is a value not given (so the service can tell metadata from typed values). */
function given(value: string): string | undefined {
  return value.trim() === '' ? undefined : value;
}

/**
 * The service names the API's fields in a few SAML messages; on the page
 * they are the form's fields.
 */
function samlWording(failure: FormFailure): FormFailure {
  const reword = (text: string): string =>
    text
      .replace(/^Give either idpMetadataXml or idpEntityId, idpSsoUrl and idpCertificate, not both\.?$/i, 'Paste the metadata or enter the values by hand, not both.')
      .replace(/\(or give idpMetadataXml\)/g, '(or paste the IdP metadata above)');
  return { ...failure, message: reword(failure.message), fields: Object.fromEntries(Object.entries(failure.fields).map(([field, text]) => [field, reword(text)])) };
}

/** A comma- or space-separated list of domains as typed into one field. */
function domainList(input: string): string[] {
  return input
    .split(/[\s,]+/)
    .map((d) => d.trim())
    .filter((d) => d !== '');
}

/**
 * The organization admin page (owners and admins; everyone else gets 404):
 * members, invitations, plan and features, security settings, SSO
 * connections and domains, staff access requests and the staff access log.
 */
export function adminPages(scope: FastifyInstance, services: Services): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const csrf = { preValidation: scope.csrfProtection, attachValidation: true } as const;
  const admin = { auth: 'user', role: 'admin' } as const;
  const sso = { ...admin, feature: 'sso' } as const;

  async function adminPage(request: FastifyRequest, reply: FastifyReply, orgId: string, failed: FormFailure | null = null): Promise<FastifyReply> {
    const { user } = userOf(request);
    const org = await services.orgs.get(orgId);
    const has = (feature: Feature): boolean => services.plans.has(org.plan, feature);
    const now = services.clock.now();
    const features = FEATURES.map((f) => ({ name: FEATURE_NAMES[f], included: has(f), requiredPlan: planName(services.plans.requiredPlanFor(f)) }));
    const settings = SETTINGS.map((s) => ({
      ...s,
      on: org.settings[s.key],
      // Turning a setting off never needs its feature (a downgrade locks nobody in).
      available: has(s.feature) || org.settings[s.key],
      requiredPlan: planName(services.plans.requiredPlanFor(s.feature)),
    }));
    const members = await services.orgs.listMembers(orgId);
    const names = new Map<string, string>();
    const nameOf = async (id: string | null): Promise<string> => {
      if (id === null) return '';
      if (!names.has(id)) names.set(id, (await services.users.byId(id))?.name ?? id);
      return names.get(id) ?? id;
    };
    const requests = await Promise.all(
      (await services.staff.listForOrg(orgId)).map(async (r) => ({
        id: r.id,
        staffName: await nameOf(r.staffId),
        scope: r.scope,
        reason: r.reason,
        ticket: r.ticket,
        durationMinutes: r.durationMinutes,
        status: r.status.replace('_', ' '),
        awaitingYou: r.customerApproval === 'pending' && (r.status === 'pending' || r.status === 'awaiting_customer'),
        requestedAt: formatTime(r.requestedAt),
        timeLeft: r.status === 'active' ? timeLeft(r.expiresAt, now) : '',
      })),
    );
    const accessLog = has('access_transparency')
      ? (await services.staff.describeAccesses(services.audit.list({ orgId, actions: STAFF_ACCESS_ACTIONS, afterSeq: 0, limit: 200 }))).reverse().map((e) => ({
          at: formatTime(e.at),
          staffName: e.staffName ?? e.staffId ?? 'unknown',
          action: e.allowed ? `${e.scope ?? 'read'} ${e.resource ?? ''}`.trim() : `refused: ${e.resource ?? ''}`.trim(),
          reason: e.reason ?? '',
          ticket: e.ticket ?? '',
        }))
      : null;
    const flagged = has('sso') ? new Set((await services.ssoEnforcement.listBreakGlass(orgId)).map((b) => b.userId)) : new Set<string>();
    const domains = has('sso') ? await services.domains.list(orgId) : [];
    const verifiedDomains = new Set(domains.filter((d) => d.verified).map((d) => d.domain));
    const ssoSection = has('sso')
      ? {
          redirectUri: oidcRedirectUri(services.config.publicUrl),
          // Each connection with the domains not verified yet: it is enabled only once one of them is.
          connections: (await services.ssoConnections.list(orgId)).map((c) => ({ ...c, unverifiedDomains: c.domains.filter((d) => !verifiedDomains.has(d)) })),
          domains,
          // Owners who keep password login while SSO is enforced (only owners may change this).
          breakGlass: members.filter((m) => m.role === 'owner').map((m) => ({ id: m.id, name: m.name, flagged: flagged.has(m.id) })),
        }
      : null;
    return renderPage(
      request,
      reply,
      'admin',
      {
        title: `${org.name}: administration`,
        org: { id: org.id, name: org.name, plan: planName(org.plan) },
        me: { id: user.id, owner: user.role === 'owner' },
        features,
        settings,
        members: members.map((m) => ({ ...m, joined: formatTime(m.createdAt) })),
        invitations: (await services.orgs.pendingInvitations(orgId)).map((i) => ({ email: i.email, role: i.role, expiresAt: formatTime(i.expiresAt) })),
        requests,
        accessLog,
        accessLogPlan: planName(services.plans.requiredPlanFor('access_transparency')),
        ssoSection,
        ssoPlan: planName(services.plans.requiredPlanFor('sso')),
        auditExport: has('audit_export') ? `/v1/orgs/${org.id}/audit?format=ndjson` : null,
        auditExportPlan: planName(services.plans.requiredPlanFor('audit_export')),
      },
      { failed },
    );
  }

  /**
   * Run a form action; a refusal re-renders the page with the message next
   * to the form (`wording` adapts a service's message to the form).
   * `done` is the notice key and anchor, or made from the action's result.
   */
  async function act<T>(
    request: FastifyRequest<{ Params: { orgId: string } }>,
    reply: FastifyReply,
    form: string,
    done: string | ((result: T) => string),
    action: () => Promise<T>,
    wording: (failure: FormFailure) => FormFailure = (failure) => failure,
  ): Promise<FastifyReply> {
    const invalid = validationFailure(request, form);
    if (invalid) return adminPage(request, reply, request.params.orgId, invalid);
    try {
      const result = await action();
      return seeOther(reply, `/orgs/${request.params.orgId}/admin?done=${typeof done === 'string' ? done : done(result)}`);
    } catch (error) {
      const failed = formFailure(error, form, request.body);
      if (!failed) throw error;
      return adminPage(request, reply, request.params.orgId, wording(failed));
    }
  }

  app.get('/orgs/:orgId/admin', { config: admin, schema: { hide: true, params: OrgParams } }, async (request, reply) => adminPage(request, reply, request.params.orgId));

  app.post('/orgs/:orgId/admin/invitations', { ...csrf, config: admin, schema: { hide: true, params: OrgParams, body: InviteForm } }, async (request, reply) =>
    act(request, reply, 'invite', 'invited#members', async () => {
      const org = await services.orgs.get(request.params.orgId);
      await services.orgs.invite(org, userOf(request).user, request.body.email, request.body.role, request.requestContext);
    }),
  );

  app.post('/orgs/:orgId/admin/members/:userId/role', { ...csrf, config: admin, schema: { hide: true, params: MemberParams, body: RoleForm } }, async (request, reply) =>
    act(request, reply, `member-${request.params.userId}`, 'role-changed#members', () =>
      services.orgs.changeRole(request.params.orgId, userOf(request).user, request.params.userId, request.body.role, request.requestContext),
    ),
  );

  app.post('/orgs/:orgId/admin/members/:userId/remove', { ...csrf, config: admin, schema: { hide: true, params: MemberParams, body: Empty } }, async (request, reply) =>
    act(request, reply, `member-${request.params.userId}`, 'member-removed#members', () =>
      removeMember(services, request),
    ),
  );

  app.post(
    '/orgs/:orgId/admin/members/:userId/reset-mfa',
    { ...csrf, config: { ...admin, fresh: true }, schema: { hide: true, params: MemberParams, body: Empty } },
    async (request, reply) =>
      act(request, reply, `member-${request.params.userId}`, 'mfa-reset#members', async () => {
        const member = await services.orgs.member(request.params.orgId, request.params.userId);
        await services.totp.resetByAdmin(userOf(request).user, member, request.requestContext);
      }),
  );

  // Restriction of processing (GDPR Art. 18) as the controller: a restricted member cannot log in until lifted.
  app.post(
    '/orgs/:orgId/admin/members/:userId/restriction',
    { ...csrf, config: admin, schema: { hide: true, params: MemberParams, body: RestrictionForm } },
    async (request, reply) =>
      act(request, reply, `member-${request.params.userId}`, request.body?.restricted === 'on' ? 'member-restricted#members' : 'member-unrestricted#members', async () => {
        const { user } = userOf(request);
        const target = await services.orgs.member(request.params.orgId, request.params.userId);
        await services.privacy.setRestriction({ actor: user, target, context: request.requestContext }, request.body.restricted === 'on');
      }),
  );

  app.post('/orgs/:orgId/admin/settings', { ...csrf, config: admin, schema: { hide: true, params: OrgParams, body: SettingForm } }, async (request, reply) =>
    act(request, reply, `setting-${String(request.body?.setting ?? '')}`, 'settings-saved#security', async () => {
      const org = await services.orgs.get(request.params.orgId);
      await services.orgs.update(org, userOf(request).user, { settings: { [request.body.setting]: request.body.value === 'on' } }, request.requestContext);
    }),
  );

  app.post('/orgs/:orgId/admin/access-requests/:id/:verb', { ...csrf, config: admin, schema: { hide: true, params: RequestParams, body: Empty } }, async (request, reply) =>
    act(request, reply, `request-${request.params.id}`, `access-${request.params.verb === 'approve' ? 'approved' : 'denied'}#staff-access`, () =>
      services.staff.customerDecide(userOf(request).user, request.params.orgId, request.params.id, request.params.verb === 'approve', request.requestContext),
    ),
  );

  // --- Single sign-on (feature sso; connection changes need a fresh authentication, as in the API) ---
  app.post('/orgs/:orgId/admin/sso/connections', { ...csrf, config: { ...sso, fresh: true }, schema: { hide: true, params: OrgParams, body: OidcForm } }, async (request, reply) =>
    act(request, reply, 'oidc', 'connection-added#sso', async () => {
      const org = await services.orgs.get(request.params.orgId);
      const body = request.body;
      await services.ssoConnections.create(
        org,
        userOf(request).user,
        { type: 'oidc', name: body.name.trim(), issuer: body.issuer.trim(), clientId: body.clientId.trim(), clientSecret: body.clientSecret, domains: domainList(body.domains) },
        request.requestContext,
      );
    }),
  );

  // SAML: the page shows our entity ID, ACS URL and metadata URL on the new connection's card (they name the connection).
  app.post(
    '/orgs/:orgId/admin/sso/saml',
    { ...csrf, config: { ...sso, fresh: true }, bodyLimit: SAML_FORM_BODY_LIMIT, schema: { hide: true, params: OrgParams, body: SamlForm } },
    async (request, reply) =>
      act(
        request,
        reply,
        'saml',
        (view: ConnectionView) => `saml-connection-added#connection-${view.id}`,
        async () => {
          const org = await services.orgs.get(request.params.orgId);
          const body = request.body;
          return services.ssoConnections.create(
            org,
            userOf(request).user,
            {
              type: 'saml',
              name: body.name.trim(),
              idpMetadataXml: given(body.idpMetadataXml),
              idpEntityId: given(body.idpEntityId),
              idpSsoUrl: given(body.idpSsoUrl),
              idpCertificate: given(body.idpCertificate),
              domains: domainList(body.domains),
            },
            request.requestContext,
          );
        },
        samlWording,
      ),
  );

  app.post(
    '/orgs/:orgId/admin/sso/connections/:connectionId/:verb',
    { ...csrf, config: { ...sso, fresh: true }, schema: { hide: true, params: ConnectionParams, body: Empty } },
    async (request, reply) => {
      const { orgId, connectionId, verb } = request.params;
      return act(request, reply, `connection-${connectionId}`, verb === 'delete' ? 'connection-deleted#sso' : 'connection-saved#sso', async () => {
        const org = await services.orgs.get(orgId);
        if (verb === 'delete') await services.ssoConnections.delete(org, userOf(request).user, connectionId, request.requestContext);
        else await services.ssoConnections.update(org, userOf(request).user, connectionId, { enabled: verb === 'enable' }, request.requestContext);
      });
    },
  );

  app.post(
    '/orgs/:orgId/admin/break-glass/:userId/:verb',
    { ...csrf, config: { auth: 'user', role: 'owner', feature: 'sso', fresh: true }, schema: { hide: true, params: BreakGlassParams, body: Empty } },
    async (request, reply) =>
      act(request, reply, `break-glass-${request.params.userId}`, 'settings-saved#security', async () => {
        const org = await services.orgs.get(request.params.orgId);
        await services.ssoEnforcement.setBreakGlass(org, userOf(request).user, request.params.userId, request.params.verb === 'on', request.requestContext);
      }),
  );

  app.post('/orgs/:orgId/admin/domains', { ...csrf, config: sso, schema: { hide: true, params: OrgParams, body: DomainForm } }, async (request, reply) =>
    act(request, reply, 'domain', 'domain-claimed#domains', () => services.domains.claim(request.params.orgId, userOf(request).user, request.body.domain.trim(), request.requestContext)),
  );

  app.post('/orgs/:orgId/admin/domains/:domain/:verb', { ...csrf, config: sso, schema: { hide: true, params: DomainParams, body: Empty } }, async (request, reply) => {
    const { orgId, domain, verb } = request.params;
    return act(request, reply, `domain-${domain}`, verb === 'verify' ? 'domain-verified#domains' : 'domain-released#domains', async () => {
      if (verb === 'verify') await services.domains.verifyByDns(orgId, userOf(request).user, domain, request.requestContext);
      else await services.domains.release(orgId, userOf(request).user, domain, request.requestContext);
    });
  });
}
