import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addMember, asUser, auditActions, buildTestApp, signup, type SignedUp, type TestApp } from '../helpers/app.js';

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

const ENTERPRISE_FEATURES = ['mfa_totp', 'sso', 'access_approval', 'access_transparency', 'audit_export'];

async function serviceToken(scopes: string[]): Promise<{ id: string; token: string }> {
  return t.services.serviceTokens.create('billing', scopes, { type: 'system', id: null });
}

const putPlan = (orgId: string, plan: unknown, headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'PUT', url: `/v1/internal/orgs/${orgId}/plan`, headers, payload: { plan } });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function planOf(orgId: string): Promise<string> {
  return (await t.services.orgs.get(orgId)).plan;
}

function planEvents(): { actorType: string; actorId: string | null; orgId: string | null; subjectId: string | null; data: unknown }[] {
  const rows = t.services.database.sqlite
    .prepare("SELECT actor_type, actor_id, org_id, subject_id, data FROM audit_events WHERE action = 'org.plan_changed' ORDER BY seq")
    .all() as { actor_type: string; actor_id: string | null; org_id: string | null; subject_id: string | null; data: string }[];
  return rows.map((r) => ({ actorType: r.actor_type, actorId: r.actor_id, orgId: r.org_id, subjectId: r.subject_id, data: JSON.parse(r.data) }));
}

describe('PUT /v1/internal/orgs/:orgId/plan: who may call it', () => {
  let owner: SignedUp;
  beforeEach(async () => {
    owner = await signup(t.app);
  });

  it('refuses a request without a token with 401 unauthenticated', async () => {
    const response = await putPlan(owner.orgId, 'enterprise');
    expect(response.statusCode).toBe(401);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.json().code).toBe('unauthenticated');
    expect(await planOf(owner.orgId)).toBe('free');
  });

  it("refuses the org owner's own session as a bearer token with 401 (a user is not a service)", async () => {
    const response = await putPlan(owner.orgId, 'enterprise', bearer(owner.token));
    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe('unauthenticated');
    expect(await planOf(owner.orgId)).toBe('free');
  });

  it("refuses the org owner's session cookie (with the right Origin) with 401", async () => {
    const response = await t.app.inject({ method: 'PUT', url: `/v1/internal/orgs/${owner.orgId}/plan`, ...asUser(owner.token), payload: { plan: 'enterprise' } });
    expect(response.statusCode).toBe(401);
    expect(await planOf(owner.orgId)).toBe('free');
  });

  it.each([
    ['an unknown service token', 'cst_thisTokenWasNeverIssuedByTheService0000000'],
    ['a malformed Authorization header', null],
  ])('refuses %s with 401', async (_label, token) => {
    const headers = token === null ? { authorization: 'Basic dXNlcjpwYXNz' } : bearer(token);
    const response = await putPlan(owner.orgId, 'enterprise', headers);
    expect(response.statusCode).toBe(401);
    expect(await planOf(owner.orgId)).toBe('free');
  });

  it('refuses a service token without plans:write with 403 forbidden', async () => {
    const { token } = await serviceToken(['authz:check']);
    const response = await putPlan(owner.orgId, 'enterprise', bearer(token));
    expect(response.statusCode).toBe(403);
    expect(response.json().code).toBe('forbidden');
    expect(response.json().detail).toContain('plans:write');
    expect(await planOf(owner.orgId)).toBe('free');
    expect(auditActions(t)).not.toContain('org.plan_changed');
  });

  it('does not let a service token act as a user on the org routes (401)', async () => {
    const { token } = await serviceToken(['plans:write', 'authz:check']);
    const response = await t.app.inject({ method: 'GET', url: `/v1/orgs/${owner.orgId}`, headers: bearer(token) });
    expect(response.statusCode).toBe(401);
  });
});

describe('PUT /v1/internal/orgs/:orgId/plan with plans:write', () => {
  it('changes the plan (200) and the features everyone in the org sees', async () => {
    const owner = await signup(t.app, { orgName: 'Acme Oy' });
    const member = await addMember(t, owner, 'member');
    const { token } = await serviceToken(['plans:write']);

    const response = await putPlan(owner.orgId, 'enterprise', bearer(token));
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ id: owner.orgId, name: 'Acme Oy', plan: 'enterprise' });
    expect(response.json().features).toEqual(ENTERPRISE_FEATURES);

    const meResponse = await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(member.token) });
    expect(meResponse.json().organization).toEqual({ id: owner.orgId, name: 'Acme Oy', plan: 'enterprise', features: ENTERPRISE_FEATURES });
    const org = await t.app.inject({ method: 'GET', url: `/v1/orgs/${owner.orgId}`, ...asUser(member.token) });
    expect(org.json()).toMatchObject({ plan: 'enterprise', features: ENTERPRISE_FEATURES });
  });

  it('shows free features (none) on /v1/me before any change, and pro features after', async () => {
    const owner = await signup(t.app);
    const before = await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(owner.token) });
    expect(before.json().organization).toMatchObject({ plan: 'free', features: [] });
    const { token } = await serviceToken(['plans:write']);
    expect((await putPlan(owner.orgId, 'pro', bearer(token))).json().features).toEqual(['audit_export']);
    const after = await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(owner.token) });
    expect(after.json().organization).toMatchObject({ plan: 'pro', features: ['audit_export'] });
  });

  it('records org.plan_changed with {from, to}, the service token as actor and no personal data', async () => {
    const owner = await signup(t.app);
    const { id, token } = await serviceToken(['plans:write']);
    await putPlan(owner.orgId, 'pro', bearer(token));
    await putPlan(owner.orgId, 'enterprise', bearer(token));
    expect(planEvents()).toEqual([
      { actorType: 'service', actorId: id, orgId: owner.orgId, subjectId: owner.orgId, data: { from: 'free', to: 'pro' } },
      { actorType: 'service', actorId: id, orgId: owner.orgId, subjectId: owner.orgId, data: { from: 'pro', to: 'enterprise' } },
    ]);
    expect(t.services.audit.verify().ok).toBe(true);
  });

  it('unlocks the gated settings immediately: requireCustomerApproval is refused before and accepted after', async () => {
    const owner = await signup(t.app);
    const patch = () =>
      t.app.inject({ method: 'PATCH', url: `/v1/orgs/${owner.orgId}`, ...asUser(owner.token), payload: { settings: { requireCustomerApproval: true } } });
    expect((await patch()).statusCode).toBe(403);
    const { token } = await serviceToken(['plans:write']);
    await putPlan(owner.orgId, 'enterprise', bearer(token));
    expect((await patch()).statusCode).toBe(200);
  });

  it.each([
    ['an unknown plan', { plan: 'platinum' }],
    ['a missing plan', {}],
    ['a plan of the wrong type', { plan: 3 }],
    ['an extra field', { plan: 'pro', features: ['sso'] }],
  ])('refuses %s with 400 validation_failed and keeps the plan', async (_label, payload) => {
    const owner = await signup(t.app);
    const { token } = await serviceToken(['plans:write']);
    const response = await t.app.inject({ method: 'PUT', url: `/v1/internal/orgs/${owner.orgId}/plan`, headers: bearer(token), payload });
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('validation_failed');
    expect(await planOf(owner.orgId)).toBe('free');
    expect(auditActions(t)).not.toContain('org.plan_changed');
  });

  it('answers 404 not_found for an unknown organization', async () => {
    const { token } = await serviceToken(['plans:write']);
    const response = await putPlan('no-such-org', 'enterprise', bearer(token));
    expect(response.statusCode).toBe(404);
    expect(response.json().code).toBe('not_found');
    expect(auditActions(t)).not.toContain('org.plan_changed');
  });

  it('changes only the organization named in the path', async () => {
    const a = await signup(t.app, { orgName: 'Org A' });
    const b = await signup(t.app, { orgName: 'Org B' });
    const { token } = await serviceToken(['plans:write']);
    await putPlan(a.orgId, 'enterprise', bearer(token));
    expect(await planOf(a.orgId)).toBe('enterprise');
    expect(await planOf(b.orgId)).toBe('free');
  });
});

describe('downgrade enterprise → free', () => {
  it('keeps existing settings readable and stored, and nobody is locked out of the org', async () => {
    const owner = await signup(t.app);
    const member = await addMember(t, owner, 'member');
    const { token } = await serviceToken(['plans:write']);
    await putPlan(owner.orgId, 'enterprise', bearer(token));
    const enable = await t.app.inject({
      method: 'PATCH',
      url: `/v1/orgs/${owner.orgId}`,
      ...asUser(owner.token),
      payload: { settings: { requireMfa: true, requireCustomerApproval: true } },
    });
    expect(enable.statusCode).toBe(200);

    const down = await putPlan(owner.orgId, 'free', bearer(token));
    expect(down.statusCode).toBe(200);
    expect(down.json()).toMatchObject({ plan: 'free', features: [], settings: { requireMfa: true, enforceSso: false, requireCustomerApproval: true } });
    expect(planEvents().at(-1)?.data).toEqual({ from: 'enterprise', to: 'free' });

    for (const who of [owner, member]) {
      const org = await t.app.inject({ method: 'GET', url: `/v1/orgs/${owner.orgId}`, ...asUser(who.token) });
      expect(org.statusCode).toBe(200);
      expect(org.json()).toMatchObject({ plan: 'free', features: [], settings: { requireMfa: true, requireCustomerApproval: true } });
      const meResponse = await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(who.token) });
      expect(meResponse.statusCode).toBe(200);
      expect(meResponse.json().organization).toMatchObject({ plan: 'free', features: [] });
    }
    // Unrelated admin work goes on; the stored settings are untouched by it.
    const rename = await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${owner.orgId}`, ...asUser(owner.token), payload: { name: 'Still Here' } });
    expect(rename.statusCode).toBe(200);
    expect(rename.json().settings).toEqual({ requireMfa: true, enforceSso: false, requireCustomerApproval: true, passwordMinLength: 15 });
    // Upgrading again restores them as they were.
    const up = await putPlan(owner.orgId, 'enterprise', bearer(token));
    expect(up.json().settings).toEqual({ requireMfa: true, enforceSso: false, requireCustomerApproval: true, passwordMinLength: 15 });
  });
});
