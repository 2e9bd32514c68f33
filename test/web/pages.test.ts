import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GOOD_PASSWORD, PUBLIC_ORIGIN, addMember, buildTestApp, mailToken, sessionCookie, signup, uniqueEmail, type LightMyRequestResponse, type SignedUp, type TestApp,
} from '../helpers/app.js';
import { ManualClock } from '../../src/platform/clock.js';
import { TestSamlIdp } from '../helpers/saml-idp.js';

/**
 * The server-rendered pages (API.md "Pages"), through the real app with
 * `inject`: redirects, CSRF tokens on every form, tenant isolation of the
 * admin page, HTML errors next to fields, and that the JSON API keeps its
 * own parser and problem+json errors. The browser flows are in test/e2e.
 */

let t: TestApp;
let owner: SignedUp;
beforeAll(async () => {
  // Cookies expire by the app's clock: start it now, as a browser would judge them.
  t = await buildTestApp({ clock: new ManualClock(new Date()) });
  owner = await signup(t.app, { orgName: 'Pages Oy' });
});
afterAll(async () => {
  await t.close();
});

/** A browser's view of one site: cookies carried between requests, Origin on POSTs. */
class Browser {
  readonly cookies: Record<string, string> = {};
  constructor(sessionToken?: string) {
    if (sessionToken) this.cookies.cleverom_session = sessionToken;
  }

  private keep(response: LightMyRequestResponse): LightMyRequestResponse {
    for (const c of response.cookies) {
      if (c.value === '' || (c.expires && c.expires.getTime() < Date.now())) delete this.cookies[c.name];
      else this.cookies[c.name] = c.value;
    }
    return response;
  }

  async get(url: string): Promise<LightMyRequestResponse> {
    return this.keep(await t.app.inject({ method: 'GET', url, cookies: this.cookies }));
  }

  /** POST a urlencoded form as a browser does (Origin header, cookies). */
  async post(url: string, fields: Record<string, string>, options: { origin?: string | null } = {}): Promise<LightMyRequestResponse> {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (options.origin !== null) headers.origin = options.origin ?? PUBLIC_ORIGIN;
    return this.keep(await t.app.inject({ method: 'POST', url, headers, cookies: this.cookies, payload: new URLSearchParams(fields).toString() }));
  }

  /** GET the page, then POST its form with the page's CSRF token. */
  async submit(pageUrl: string, action: string, fields: Record<string, string>): Promise<LightMyRequestResponse> {
    const page = await this.get(pageUrl);
    expect(page.statusCode, page.body).toBe(200);
    return this.post(action, { _csrf: csrfToken(page.body), ...fields });
  }
}

function csrfToken(html: string): string {
  const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
  if (!token) throw new Error('no CSRF token in the page');
  return token;
}

describe('redirects', () => {
  it('/ sends a visitor to /login and a member to /account', async () => {
    const visitor = await new Browser().get('/');
    expect(visitor.statusCode).toBe(303);
    expect(visitor.headers.location).toBe('/login');
    const member = await new Browser(owner.token).get('/');
    expect(member.statusCode).toBe(303);
    expect(member.headers.location).toBe('/account');
  });

  it('a page that needs a session sends a visitor to /login and back', async () => {
    const response = await new Browser().get('/account');
    expect(response.statusCode).toBe(303);
    expect(response.headers.location).toBe('/login?returnTo=%2Faccount');
  });

  it('the login form keeps only a relative returnTo (no open redirect)', async () => {
    const page = await new Browser().get('/login?returnTo=https%3A%2F%2Fevil.example%2F');
    expect(page.body).toContain('name="returnTo" value="/"');
  });
});

describe('pages are HTML with labels, a CSRF token and a strict CSP', () => {
  it.each(['/login', '/signup', '/password-reset', '/invitations/accept?token=x'])('%s', async (url) => {
    const page = await new Browser().get(url);
    expect(page.statusCode).toBe(200);
    expect(String(page.headers['content-type'])).toContain('text/html');
    expect(String(page.headers['content-security-policy'])).toContain("script-src 'self'");
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.body).not.toMatch(/<script|style=/i);
    csrfToken(page.body);
    // Every input other than hidden ones has a label pointing at it.
    for (const [, id] of page.body.matchAll(/<input id="([^"]+)"/g)) expect(page.body).toContain(`for="${id}"`);
  });

  it('the sign-up page names its fields as API.md says', async () => {
    const page = await new Browser().get('/signup');
    for (const label of ['Organization name', 'Your name', 'Email', 'Password', 'I am 16 or older']) expect(page.body).toContain(`>${label}</label>`);
  });

  it('serves one stylesheet', async () => {
    const css = await new Browser().get('/assets/site.css');
    expect(css.statusCode).toBe(200);
    expect(String(css.headers['content-type'])).toContain('text/css');
  });
});

/**
 * Attack: cross-site request forgery against the pages. Besides the Origin
 * check every page form carries a token tied to a cookie; a POST without
 * it, or with a token of another browser, changes nothing.
 */
describe('CSRF tokens', () => {
  it('a login POST without a token is refused with an HTML page', async () => {
    const browser = new Browser();
    await browser.get('/login');
    const response = await browser.post('/login', { email: owner.email, password: GOOD_PASSWORD });
    expect(response.statusCode).toBe(403);
    expect(String(response.headers['content-type'])).toContain('text/html');
    expect(response.body).toContain('This form has expired');
    expect(response.cookies.find((c) => c.name === 'cleverom_session')).toBeUndefined();
  });

  it("another browser's token does not work", async () => {
    const attacker = new Browser();
    const token = csrfToken((await attacker.get('/login')).body);
    const victim = new Browser();
    await victim.get('/login');
    const response = await victim.post('/login', { _csrf: token, email: owner.email, password: GOOD_PASSWORD });
    expect(response.statusCode).toBe(403);
  });

  it('a signed-in POST without a token changes nothing', async () => {
    const member = await addMember(t, owner, 'member');
    const browser = new Browser(owner.token);
    await browser.get(`/orgs/${owner.orgId}/admin`);
    const response = await browser.post(`/orgs/${owner.orgId}/admin/members/${member.userId}/role`, { role: 'admin' });
    expect(response.statusCode).toBe(403);
    expect((await t.services.orgs.listMembers(owner.orgId)).find((m) => m.id === member.userId)?.role).toBe('member');
  });

  it('a POST from another origin is refused even with a token', async () => {
    const browser = new Browser(owner.token);
    const token = csrfToken((await browser.get('/account')).body);
    const response = await browser.post('/account/sessions/revoke-others', { _csrf: token }, { origin: 'https://evil.example' });
    expect(response.statusCode).toBe(403);
    expect(String(response.headers['content-type'])).toContain('text/html');
  });
});

describe('forms', () => {
  it('sign-up creates the organization, sets the session cookie and lands on /account', async () => {
    const browser = new Browser();
    const email = uniqueEmail('page');
    const response = await browser.submit('/signup', '/signup', { orgName: 'Form Oy', name: 'Pia Page', email, password: GOOD_PASSWORD, ageConfirmed: 'yes' });
    expect(response.statusCode, response.body).toBe(303);
    expect(response.headers.location).toBe('/account');
    sessionCookie(response);
    const account = await browser.get('/account');
    expect(account.statusCode).toBe(200);
    expect(account.body).toContain('Pia Page');
    expect(account.body).toContain('Form Oy');
  });

  it('errors are shown next to their fields and the typed values are kept (never the password)', async () => {
    const browser = new Browser();
    const response = await browser.submit('/signup', '/signup', { orgName: 'Young Oy', name: 'Kid', email: 'not-an-email', password: 'short', ageConfirmed: '' });
    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('id="signup-email-error"');
    expect(response.body).toContain('aria-describedby="signup-email-error"');
    expect(response.body).toContain('value="Young Oy"');
    expect(response.body).not.toContain('value="short"');
  });

  it('the 16+ confirmation is required', async () => {
    const browser = new Browser();
    const response = await browser.submit('/signup', '/signup', { orgName: 'Young Oy', name: 'Kid', email: uniqueEmail('kid'), password: GOOD_PASSWORD });
    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('id="signup-ageConfirmed-error"');
    expect(response.body).toContain('You must be 16 or older');
  });

  it('a wrong password re-renders the login form with the message', async () => {
    const browser = new Browser();
    const response = await browser.submit('/login', '/login', { email: owner.email, password: 'wrong password entirely here' });
    expect(response.statusCode).toBe(401);
    expect(response.body).toContain('The email or password is incorrect.');
    expect(response.body).toContain(`value="${owner.email}"`);
  });

  it('logging in sets the same session cookie as the API and honours returnTo', async () => {
    const browser = new Browser();
    const response = await browser.submit('/login', '/login', { email: owner.email, password: GOOD_PASSWORD, returnTo: `/orgs/${owner.orgId}/admin` });
    expect(response.statusCode).toBe(303);
    expect(response.headers.location).toBe(`/orgs/${owner.orgId}/admin`);
    const token = sessionCookie(response);
    const me = await t.app.inject({ method: 'GET', url: '/v1/me', cookies: { cleverom_session: token } });
    expect(me.statusCode).toBe(200);
  });

  it('password reset: the emailed link opens a form that sets the new password', async () => {
    const person = await signup(t.app, { orgName: 'Forgetful Oy' });
    await new Browser().submit('/password-reset', '/password-reset', { email: person.email });
    const token = mailToken(t, person.email, 'password_reset');
    const browser = new Browser();
    const newPassword = 'a completely different passphrase';
    const response = await browser.submit(`/password-reset?token=${token}`, '/password-reset/confirm', { token, newPassword });
    expect(response.statusCode, response.body).toBe(303);
    expect(response.headers.location).toBe('/login?done=password-reset');
    const login = await new Browser().submit('/login', '/login', { email: person.email, password: newPassword });
    expect(login.statusCode).toBe(303);
    // The link works once.
    const again = await browser.submit(`/password-reset?token=${token}`, '/password-reset/confirm', { token, newPassword: 'yet another long passphrase' });
    expect(again.statusCode).toBe(400);
    expect(again.body).toContain('This reset link is not valid');
  });

  it('password reset answers the same for unknown emails', async () => {
    const known = await new Browser().submit('/password-reset', '/password-reset', { email: owner.email });
    const unknown = await new Browser().submit('/password-reset', '/password-reset', { email: uniqueEmail('nobody') });
    expect(known.statusCode).toBe(200);
    expect(unknown.statusCode).toBe(200);
    expect(known.body.replace(/value="[^"]+"/g, '')).toBe(unknown.body.replace(/value="[^"]+"/g, ''));
  });
});

/**
 * Attack: tenant isolation through the admin page. Another organization's
 * admin page does not exist for you (404), and neither does your own for a
 * plain member.
 */
describe('organization admin page', () => {
  it('owners see it', async () => {
    const page = await new Browser(owner.token).get(`/orgs/${owner.orgId}/admin`);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Pages Oy');
    // Plan-gated features are shown disabled with the plan they need.
    expect(page.body).toContain('Single sign-on needs the Enterprise plan.');
    expect(page.body).toContain('Require two-factor authentication needs the Enterprise plan.');
  });

  it("another organization's admin page is 404", async () => {
    const other = await signup(t.app, { orgName: 'Other Oy' });
    const page = await new Browser(other.token).get(`/orgs/${owner.orgId}/admin`);
    expect(page.statusCode).toBe(404);
    expect(page.body).not.toContain('Pages Oy');
  });

  it('a plain member gets 404 too, and cannot post to it', async () => {
    const member = await addMember(t, owner, 'member');
    const browser = new Browser(member.token);
    expect((await browser.get(`/orgs/${owner.orgId}/admin`)).statusCode).toBe(404);
    const token = csrfToken((await browser.get('/account')).body);
    const response = await browser.post(`/orgs/${owner.orgId}/admin/invitations`, { _csrf: token, email: uniqueEmail('x'), role: 'owner' });
    expect(response.statusCode).toBe(404);
  });
});

describe('the JSON API is unchanged', () => {
  it('a urlencoded body to /v1 is still refused as malformed (the form parser is for pages only)', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/v1/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `email=${encodeURIComponent(owner.email)}&password=x`,
    });
    expect(response.statusCode).toBe(400);
    expect(String(response.headers['content-type'])).toContain('application/problem+json');
  });

  it('unknown /v1 paths are still problem+json', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/v1/nope' });
    expect(response.statusCode).toBe(404);
    expect(String(response.headers['content-type'])).toContain('application/problem+json');
  });
});

describe('gates become pages', () => {
  const system = { type: 'system' as const, id: null };
  const context = { ip: null, userAgent: null };

  it('an organization that requires two-factor sends a member without it to the set-up page', async () => {
    const strict = await signup(t.app, { orgName: 'Strict Oy' });
    await t.services.orgs.setPlan(strict.orgId, 'enterprise', system);
    const user = await t.services.users.byId(strict.userId);
    if (!user) throw new Error('no owner');
    await t.services.orgs.update(await t.services.orgs.get(strict.orgId), user, { settings: { requireMfa: true } }, context);
    const browser = new Browser(strict.token);
    const account = await browser.get('/account');
    expect(account.statusCode).toBe(303);
    expect(account.headers.location).toBe('/account/two-factor');
    const page = await browser.get('/account/two-factor');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Your organization requires two-factor authentication');
    expect(page.body).toContain('Set up two-factor authentication');
  });

  it('a sensitive action with an old authentication asks the person to confirm it is them, and does nothing yet', async () => {
    const leaving = await signup(t.app, { orgName: 'Careful Oy' });
    const browser = new Browser(leaving.token);
    const token = csrfToken((await browser.get('/account')).body);
    t.clock.advance(11 * 60_000);
    const response = await browser.post('/account/delete', { _csrf: token, understood: 'yes', deleteOrganization: 'yes' });
    expect(response.statusCode).toBe(303);
    expect(response.headers.location).toBe('/account/confirm?returnTo=%2Faccount');
    expect(await t.services.users.byId(leaving.userId)).not.toBeNull();
    const confirm = await browser.get(String(response.headers.location));
    expect(confirm.statusCode).toBe(200);
    expect(confirm.body).toContain('Confirm it is you');
  });

  it('an admin restricts a member from the admin page; the member is signed out', async () => {
    const member = await addMember(t, owner, 'member');
    const browser = new Browser(owner.token);
    const response = await browser.submit(`/orgs/${owner.orgId}/admin`, `/orgs/${owner.orgId}/admin/members/${member.userId}/restriction`, { restricted: 'on' });
    expect(response.statusCode, response.body).toBe(303);
    expect((await t.services.users.byId(member.userId))?.status).toBe('restricted');
    expect((await new Browser(member.token).get('/account')).statusCode).toBe(303);
  });

  it('an owner of an Enterprise organization flags a break-glass owner (fresh authentication)', async () => {
    const enterprise = await signup(t.app, { orgName: 'Glass Oy' });
    await t.services.orgs.setPlan(enterprise.orgId, 'enterprise', system);
    const browser = new Browser(enterprise.token);
    const page = await browser.get(`/orgs/${enterprise.orgId}/admin`);
    expect(page.body).toContain('Break-glass owners');
    const response = await browser.post(`/orgs/${enterprise.orgId}/admin/break-glass/${enterprise.userId}/on`, { _csrf: csrfToken(page.body) });
    expect(response.statusCode, response.body).toBe(303);
    expect((await t.services.ssoEnforcement.listBreakGlass(enterprise.orgId)).map((b) => b.userId)).toEqual([enterprise.userId]);
  });

  it("a refusal from a service is shown next to the form that caused it (the last owner cannot leave)", async () => {
    const browser = new Browser(owner.token);
    const response = await browser.submit(`/orgs/${owner.orgId}/admin`, `/orgs/${owner.orgId}/admin/members/${owner.userId}/role`, { role: 'member' });
    expect(response.statusCode).toBe(409);
    expect(response.body).toContain('An organization needs at least one owner.');
    expect(response.body).toContain(`id="member-${owner.userId}-summary-title"`);
  });
});

/**
 * The SAML connection form of the admin page: metadata pasted into a
 * textarea (or the IdP's three values by hand), through the same service as
 * `POST /v1/orgs/:orgId/sso/connections`. Attacks: a forged POST (no CSRF
 * token) adds nothing; an organization without the plan cannot add one.
 */
describe('SAML connection form', () => {
  const system = { type: 'system' as const, id: null };
  let idp: TestSamlIdp;
  beforeAll(() => {
    idp = new TestSamlIdp('https://idp.example.test/metadata');
  });

  async function enterprise(orgName: string): Promise<SignedUp> {
    const signed = await signup(t.app, { orgName });
    await t.services.orgs.setPlan(signed.orgId, 'enterprise', system);
    return signed;
  }
  const samlForm = (fields: Partial<Record<'name' | 'idpMetadataXml' | 'idpEntityId' | 'idpSsoUrl' | 'idpCertificate' | 'domains', string>>): Record<string, string> => ({
    name: 'Corporate SAML', idpMetadataXml: '', idpEntityId: '', idpSsoUrl: '', idpCertificate: '', domains: 'saml-pages.example', ...fields,
  });

  it('pasted metadata (tens of KiB) adds a connection whose card shows our entity ID, ACS URL and metadata URL', async () => {
    const admin = await enterprise('Saml Pages Oy');
    const browser = new Browser(admin.token);
    const page = await browser.get(`/orgs/${admin.orgId}/admin`);
    expect(page.body).toContain(`action="/orgs/${admin.orgId}/admin/sso/saml"`);
    for (const id of ['saml-name', 'saml-idpMetadataXml', 'saml-idpEntityId', 'saml-idpSsoUrl', 'saml-idpCertificate', 'saml-domains']) expect(page.body).toContain(`for="${id}"`);
    // Real metadata often carries many roles and certificates: well over the 64 KiB default once form-encoded.
    const metadata = idp.metadataXml().replace(/(<\/[A-Za-z:]*EntityDescriptor>\s*)$/, `<!-- ${'<pad="x"/> '.repeat(4000)} -->$1`);
    expect(metadata.length).toBeGreaterThan(40 * 1024);
    const fields = { _csrf: csrfToken(page.body), ...samlForm({ idpMetadataXml: metadata }) };
    expect(new URLSearchParams(fields).toString().length).toBeGreaterThan(t.services.config.bodyLimitBytes);
    const response = await browser.post(`/orgs/${admin.orgId}/admin/sso/saml`, fields);
    expect(response.statusCode, response.body).toBe(303);
    const [connection] = await t.services.ssoConnections.list(admin.orgId);
    expect(connection).toMatchObject({ type: 'saml', name: 'Corporate SAML', idpEntityId: 'https://idp.example.test/metadata', domains: ['saml-pages.example'] });
    expect(response.headers.location).toBe(`/orgs/${admin.orgId}/admin?done=saml-connection-added#connection-${connection?.id}`);

    const after = await browser.get(String(response.headers.location));
    expect(after.body).toContain('The SAML connection is added.');
    expect(after.body).toContain(`id="connection-${connection?.id}"`);
    expect(after.body).toContain(`>${connection?.spEntityId}</code>`);
    expect(after.body).toContain(`id="connection-${connection?.id}-acs-url">${t.services.config.publicUrl.origin}/v1/sso/saml/${connection?.id}/acs</code>`);
    expect(after.body).toContain(`href="${connection?.metadataUrl}"`);
    expect(after.body).toContain('https://idp.example.test/saml/sso');
  });

  it('the IdP values typed by hand add a connection too', async () => {
    const admin = await enterprise('Saml Manual Oy');
    const browser = new Browser(admin.token);
    const response = await browser.submit(`/orgs/${admin.orgId}/admin`, `/orgs/${admin.orgId}/admin/sso/saml`, samlForm({
      idpEntityId: 'https://manual.example.test/idp', idpSsoUrl: 'https://manual.example.test/sso', idpCertificate: idp.keys.certificatePem,
    }));
    expect(response.statusCode, response.body).toBe(303);
    expect(await t.services.ssoConnections.list(admin.orgId)).toMatchObject([{ type: 'saml', idpEntityId: 'https://manual.example.test/idp', idpSsoUrl: 'https://manual.example.test/sso' }]);
  });

  it('a POST without the CSRF token adds nothing', async () => {
    const admin = await enterprise('Saml Forged Oy');
    const browser = new Browser(admin.token);
    await browser.get(`/orgs/${admin.orgId}/admin`);
    const response = await browser.post(`/orgs/${admin.orgId}/admin/sso/saml`, samlForm({ idpMetadataXml: idp.metadataXml() }));
    expect(response.statusCode).toBe(403);
    expect(response.body).toContain('This form has expired');
    expect(await t.services.ssoConnections.list(admin.orgId)).toEqual([]);
  });

  it('metadata that cannot be used is reported next to its field, and what was typed is kept', async () => {
    const admin = await enterprise('Saml Broken Oy');
    const browser = new Browser(admin.token);
    const broken = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>';
    const response = await browser.submit(`/orgs/${admin.orgId}/admin`, `/orgs/${admin.orgId}/admin/sso/saml`, samlForm({ idpMetadataXml: broken }));
    expect(response.statusCode).toBe(400);
    expect(String(response.headers['content-type'])).toContain('text/html');
    expect(response.body).toContain('id="saml-summary-title"');
    expect(response.body).toContain('The IdP metadata could not be used');
    expect(response.body).toContain('id="saml-idpMetadataXml-error"');
    expect(response.body).toMatch(/<textarea id="saml-idpMetadataXml"[^>]*aria-invalid="true"[^>]*aria-describedby="[^"]*saml-idpMetadataXml-error"/);
    // Kept, escaped (never markup of its own).
    expect(response.body).toContain('&lt;!DOCTYPE x [&lt;!ENTITY e &quot;boom&quot;&gt;]&gt;');
    expect(response.body).toContain('value="Corporate SAML"');
    expect(await t.services.ssoConnections.list(admin.orgId)).toEqual([]);
  });

  it('neither metadata nor values, or both, are explained in the words of the form', async () => {
    const admin = await enterprise('Saml Empty Oy');
    const browser = new Browser(admin.token);
    const neither = await browser.submit(`/orgs/${admin.orgId}/admin`, `/orgs/${admin.orgId}/admin/sso/saml`, samlForm({}));
    expect(neither.statusCode).toBe(400);
    expect(neither.body).toContain('id="saml-idpEntityId-error"');
    expect(neither.body).toContain('Is required (or paste the IdP metadata above).');
    expect(neither.body).not.toContain('give idpMetadataXml');
    const both = await browser.submit(`/orgs/${admin.orgId}/admin`, `/orgs/${admin.orgId}/admin/sso/saml`, samlForm({ idpMetadataXml: idp.metadataXml(), idpEntityId: 'https://idp.example.test/metadata' }));
    expect(both.statusCode).toBe(400);
    expect(both.body).toContain('id="saml-idpMetadataXml-error"');
    expect(both.body).toContain('Paste the metadata or enter the values by hand, not both.');
    const blankName = await browser.submit(`/orgs/${admin.orgId}/admin`, `/orgs/${admin.orgId}/admin/sso/saml`, samlForm({ name: '   ', idpMetadataXml: idp.metadataXml() }));
    expect(blankName.statusCode).toBe(400);
    expect(blankName.body).toContain('id="saml-name-error"');
    expect(await t.services.ssoConnections.list(admin.orgId)).toEqual([]);
  });

  it('without the Enterprise plan the controls are shown disabled with the plan, and a POST is refused', async () => {
    const free = await signup(t.app, { orgName: 'Saml Free Oy' });
    const browser = new Browser(free.token);
    const page = await browser.get(`/orgs/${free.orgId}/admin`);
    expect(page.body).toContain('<button type="button" disabled aria-describedby="sso-plan">Add a SAML identity provider</button>');
    expect(page.body).toContain('id="sso-plan">Single sign-on needs the Enterprise plan.');
    expect(page.body).not.toContain(`action="/orgs/${free.orgId}/admin/sso/saml"`);
    const response = await browser.post(`/orgs/${free.orgId}/admin/sso/saml`, { _csrf: csrfToken(page.body), ...samlForm({ idpMetadataXml: idp.metadataXml() }) });
    expect(response.statusCode).toBe(403);
    expect(response.body).toContain('This needs the Enterprise plan.');
    expect(await t.services.ssoConnections.list(free.orgId)).toEqual([]);
  });
});

/**
 * The admin page explains the two SSO refusals that protect the
 * organization: enforcing SSO while no owner keeps a way in (the lock-out
 * of the issue), and enabling a connection none of whose domains is
 * verified; each card names its unverified domains.
 */
describe('single sign-on safeguards on the admin page', () => {
  const system = { type: 'system' as const, id: null };
  const context = { ip: null, userAgent: null };
  let idp: TestSamlIdp;
  beforeAll(() => {
    idp = new TestSamlIdp('https://idp.safeguards.example/metadata');
  });

  async function enterpriseWithSamlConnection(orgName: string, domain: string, verified: 'verified' | 'unverified'): Promise<{ org: SignedUp; connectionId: string }> {
    const org = await signup(t.app, { orgName });
    await t.services.orgs.setPlan(org.orgId, 'enterprise', system);
    const user = await t.services.users.byId(org.userId);
    if (!user) throw new Error('no owner');
    if (verified === 'verified') await t.services.domains.verifyManually({ orgId: org.orgId, domain, actor: system });
    const view = await t.services.ssoConnections.create(
      await t.services.orgs.get(org.orgId),
      user,
      { type: 'saml', name: 'Safeguard IdP', idpMetadataXml: idp.metadataXml(), domains: [domain] },
      context,
    );
    expect(view.enabled).toBe(verified === 'verified');
    return { org, connectionId: view.id };
  }

  it('turning on Enforce SSO while no owner keeps a way in is refused next to the setting, naming the fix', async () => {
    const { org } = await enterpriseWithSamlConnection('Lockout Oy', 'lockout.example', 'verified');
    const browser = new Browser(org.token);
    const response = await browser.submit(`/orgs/${org.orgId}/admin`, `/orgs/${org.orgId}/admin/settings`, { setting: 'enforceSso', value: 'on' });
    expect(response.statusCode).toBe(409);
    expect(response.body).toContain('id="setting-enforceSso-summary-title"');
    expect(response.body).toContain('Make an owner a break-glass owner or sign in once through SSO, then turn it on.');
    expect((await t.services.orgs.get(org.orgId)).settings.enforceSso).toBe(false);
  });

  it('a connection card names its unverified domains, and Enable explains the refusal on the card', async () => {
    const { org, connectionId } = await enterpriseWithSamlConnection('Unverified Oy', 'unverified.example', 'unverified');
    const browser = new Browser(org.token);
    const page = await browser.get(`/orgs/${org.orgId}/admin`);
    expect(page.body).toContain(`id="connection-${connectionId}-unverified">unverified.example: verify one under Domains before enabling this connection.</dd>`);
    const response = await browser.post(`/orgs/${org.orgId}/admin/sso/connections/${connectionId}/enable`, { _csrf: csrfToken(page.body) });
    expect(response.statusCode).toBe(409);
    expect(response.body).toContain(`id="connection-${connectionId}-summary-title"`);
    expect(response.body).toContain('Not verified yet: unverified.example.');
    expect((await t.services.ssoConnections.list(org.orgId))[0]?.enabled).toBe(false);
  });
});
