import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { asUser, buildTestApp, signup, type SignedUp, type TestApp } from '../helpers/app.js';
import { bearer, createStaff } from '../helpers/staff.js';
import { makeEnterprise } from '../helpers/totp.js';

let t: TestApp;
let customer: SignedUp;
beforeEach(async () => {
  t = await buildTestApp();
  customer = await signup(t.app);
  await makeEnterprise(t, customer.orgId);
});
afterEach(async () => {
  await t.close();
});

const verify = (token: string, domain = 'acme.example', orgId = customer.orgId) =>
  t.app.inject({ method: 'POST', url: `/v1/staff/orgs/${orgId}/domains/${domain}/verify`, ...bearer(token), payload: { reason: 'DNS provider outage, ticket SUP-9' } });

describe('manual domain verification by staff', () => {
  it('a security_admin verifies a claimed domain; the org sees it verified, audited as manual by that staff member', async () => {
    const claim = await t.app.inject({ method: 'POST', url: `/v1/orgs/${customer.orgId}/domains`, ...asUser(customer.token), payload: { domain: 'acme.example' } });
    expect(claim.statusCode).toBe(201);
    const admin = await createStaff(t, 'security_admin');
    const response = await verify(admin.token);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ domain: 'acme.example', verified: true, verificationMethod: 'manual' });
    const list = await t.app.inject({ method: 'GET', url: `/v1/orgs/${customer.orgId}/domains`, ...asUser(customer.token) });
    expect(list.json().domains[0]).toMatchObject({ verified: true });
    const event = t.services.database.sqlite.prepare("SELECT actor_type, actor_id, data FROM audit_events WHERE action = 'org.domain.verified'").get() as {
      actor_type: string; actor_id: string; data: string;
    };
    expect(event).toMatchObject({ actor_type: 'staff', actor_id: admin.id });
    expect(JSON.parse(event.data)).toMatchObject({ method: 'manual' });
  });

  it('refuses other staff roles and customers', async () => {
    const support = await createStaff(t, 'support');
    expect((await verify(support.token)).statusCode).toBe(403);
    expect((await verify(customer.token)).statusCode).toBe(403);
  });

  it('answers 404 for an unknown organization', async () => {
    const admin = await createStaff(t, 'security_admin');
    expect((await verify(admin.token, 'acme.example', '01900000-0000-7000-8000-000000000000')).statusCode).toBe(404);
  });
});
