import { afterEach, describe, expect, it } from 'vitest';
import { asUser } from '../helpers/app.js';
import { buildSsoTestApp, createConnection, enterpriseOwner, type SsoTestApp } from '../helpers/sso.js';

/**
 * EU data residency: with DATA_REGION_ALLOWLIST set, an org admin cannot
 * point single sign-on at an identity provider outside the allowed hosts
 * (logins and emails would flow there). docs/operations.md "EU data residency".
 */
let t: SsoTestApp;
afterEach(async () => {
  await t.close();
});

describe('SSO endpoints and DATA_REGION_ALLOWLIST', () => {
  it('refuses an OIDC issuer outside the allow-list, naming the field', async () => {
    t = await buildSsoTestApp({ DATA_REGION_ALLOWLIST: '.eu,.fi' });
    const owner = await enterpriseOwner(t);
    const response = await createConnection(t, owner, { issuer: 'https://login.example.com', clientId: 'c', clientSecret: 's', domains: ['acme.fi'] });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual([expect.objectContaining({ field: 'issuer', message: expect.stringContaining('DATA_REGION_ALLOWLIST') })]);
  });

  it('refuses a SAML SSO URL outside the allow-list', async () => {
    t = await buildSsoTestApp({ DATA_REGION_ALLOWLIST: '.eu' });
    const owner = await enterpriseOwner(t);
    const response = await t.app.inject({
      method: 'POST',
      url: `/v1/orgs/${owner.orgId}/sso/connections`,
      ...asUser(owner.token),
      payload: { type: 'saml', name: 'US IdP', idpEntityId: 'https://idp.example.com', idpSsoUrl: 'https://idp.example.com/sso', idpCertificate: 'MIIB', domains: ['acme.eu'] },
    });
    expect(response.statusCode).toBe(400);
    expect(JSON.stringify(response.json().errors)).toContain('DATA_REGION_ALLOWLIST');
  });

  it('allows endpoints inside the allow-list (the check is by host suffix)', async () => {
    t = await buildSsoTestApp({ DATA_REGION_ALLOWLIST: '.eu,127.0.0.1', DANGEROUSLY_ALLOW_LOOPBACK_IDP: 'true' });
    const owner = await enterpriseOwner(t);
    // Shape and region pass; discovery then fails because nothing listens there.
    const response = await createConnection(t, owner, { issuer: 'http://127.0.0.1:9/', clientId: 'c', clientSecret: 's', domains: ['acme.eu'] });
    expect(response.statusCode).toBe(400);
    expect(JSON.stringify(response.json().errors)).not.toContain('DATA_REGION_ALLOWLIST');
  });
});
