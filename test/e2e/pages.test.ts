import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCodeAt } from '../../src/auth/totp/totp.js';
import { readFileSync } from 'node:fs';
import { GOOD_PASSWORD, mailToken, uniqueEmail } from '../helpers/app.js';
import { TestOidcProvider } from '../helpers/oidc-provider.js';
import { TestSamlIdp } from '../helpers/saml-idp.js';
import { LOOPBACK_ENV, TestDns } from '../helpers/sso.js';
import { HAS_CHROMIUM, SKIP_REASON, launchChromium, personContext, seriousViolations, startApp, withScreenshots, type LiveApp } from './harness.js';

/**
 * People's tasks in a real browser (issue 8): Debian's Chromium, headless,
 * against the real app on 127.0.0.1. Forms are filled by their labels, as a
 * person (or a screen reader) finds them.
 */

if (!HAS_CHROMIUM) console.warn(SKIP_REASON);

let t: LiveApp;
let browser: Browser;
let idp: TestOidcProvider;
const dns = new TestDns();
const contexts: BrowserContext[] = [];

async function newPerson(options: { bypassCSP?: boolean } = {}): Promise<Page> {
  const context = await personContext(browser, t.origin, options);
  contexts.push(context);
  return context.newPage();
}

async function logIn(page: Page, email: string, password: string = GOOD_PASSWORD): Promise<void> {
  await page.goto('/login');
  await page.locator('form[action="/login"]').getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

async function logOut(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(/\/login\?done=logged-out$/);
}

/** Set up TOTP from the account pages, as a person with an authenticator app would; returns the secret and recovery codes. */
async function enrolTotp(page: Page): Promise<{ secret: string; recoveryCodes: string[] }> {
  await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
  await page.locator('#totp-secret').waitFor();
  const qr = page.getByRole('img', { name: 'QR code for your authenticator app' });
  expect(await qr.getAttribute('src')).toMatch(/^data:image\/svg\+xml;base64,/);
  // The QR image really loads under the page's CSP (img-src data:).
  expect(await qr.evaluate((img) => (img as unknown as { complete: boolean; naturalWidth: number }).complete && (img as unknown as { naturalWidth: number }).naturalWidth > 0)).toBe(true);
  const secret = (await page.locator('#totp-secret').textContent())?.trim() ?? '';
  expect(secret).toMatch(/^[A-Z2-7]{16,}$/);
  await page.getByLabel('Authentication code').fill(await totpCodeAt(secret, t.clock.now()));
  await page.getByRole('button', { name: 'Turn on two-factor authentication' }).click();
  await page.locator('#recovery-codes').waitFor();
  const recoveryCodes = (await page.locator('#recovery-codes code').allTextContents()).map((c) => c.trim());
  expect(recoveryCodes).toHaveLength(10);
  return { secret, recoveryCodes };
}

/** On the admin page: claim `domain`, publish the TXT record the page shows (as the admin would at their DNS host), verify it. */
async function claimAndVerifyDomain(admin: Page, domain: string): Promise<void> {
  const claim = admin.locator('form[action$="/admin/domains"]');
  await claim.getByLabel('Domain').fill(domain);
  await claim.getByRole('button', { name: 'Claim domain' }).click();
  await admin.waitForURL(/done=domain-claimed/);
  const row = admin.locator('#sso tr', { hasText: domain });
  const [name, value] = (await row.locator('code').allTextContents()).map((c) => c.trim());
  dns.txt.set(name ?? '', [[value ?? '']]);
  await row.getByRole('button', { name: `Verify ${domain}` }).click();
  await admin.waitForURL(/done=domain-verified/);
}

const html = (value: string): string => value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * The page an IdP answers with after its login: a form that POSTs the
 * signed response to our ACS. Real IdPs submit it with a script; here the
 * test clicks the button (same request: a cross-site, top-level POST).
 */
function autoPostPage(acsUrl: string, samlResponse: string): string {
  return (
    '<!doctype html><html lang="en"><head><title>Test IdP</title></head><body><main>' +
    `<form method="post" action="${html(acsUrl)}"><input type="hidden" name="SAMLResponse" value="${html(samlResponse)}">` +
    '<button type="submit">Continue to the service</button></form></main></body></html>'
  );
}

/** Playwright's own `expect` is not used: vitest's, with polling where the page may still be loading. */
function expectText(locator: ReturnType<Page['locator']>) {
  return {
    async toContain(text: string): Promise<void> {
      await locator.first().waitFor();
      expect(await locator.first().textContent()).toContain(text);
    },
  };
}

describe.skipIf(!HAS_CHROMIUM)(HAS_CHROMIUM ? 'pages in Chromium' : SKIP_REASON, { timeout: 60_000 }, () => {
  beforeAll(async () => {
    // The IdP listens on 127.0.0.1: the loudly named test-only switch allows it; DNS answers come from the test.
    [t, browser] = await Promise.all([startApp(LOOPBACK_ENV, { dnsResolver: dns }), launchChromium()]);
    idp = await TestOidcProvider.start({ redirectUri: `${t.origin}/v1/sso/oidc/callback` });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await idp?.close();
    await t?.close();
  });

  it('sign up → log in → enrol TOTP → log out → log in with a code, then with a recovery code', async () => {
    const page = await newPerson();
    const email = uniqueEmail('e2e-owner');
    await withScreenshots('sign-up and TOTP', () => contexts, async () => {
      await page.goto('/');
      await page.waitForURL('**/login');
      await page.getByRole('link', { name: 'Create an organization' }).click();
      await page.getByLabel('Organization name').fill('Browser Oy');
      await page.getByLabel('Your name').fill('Bea Browser');
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Password', { exact: true }).fill(GOOD_PASSWORD);
      // Keyboard: the 16+ box is ticked with the space bar, the form sent with Enter.
      await page.getByLabel('I am 16 or older').focus();
      await page.keyboard.press('Space');
      await page.getByRole('button', { name: 'Create organization' }).press('Enter');
      await page.waitForURL('**/account');
      await expectText(page.locator('main')).toContain('Bea Browser');
      // The free plan shows the feature disabled, with the plan it needs.
      await expectText(page.locator('#two-factor')).toContain('Two-factor authentication needs the Enterprise plan.');
      expect(await page.getByRole('button', { name: 'Set up two-factor authentication' }).isDisabled()).toBe(true);

      // Billing moves the organization to Enterprise.
      const owner = await t.services.users.byEmail(email);
      await t.services.orgs.setPlan(owner?.orgId ?? '', 'enterprise', { type: 'system', id: null });

      await logOut(page);
      await logIn(page, email);
      await page.waitForURL('**/account');
      const { secret, recoveryCodes } = await enrolTotp(page);
      await page.getByRole('link', { name: 'I have saved my codes' }).click();
      await expectText(page.locator('#two-factor')).toContain('Two-factor authentication is on');

      await logOut(page);
      t.clock.advance(30_000); // the next code belongs to a new time step (a used step is refused)
      await logIn(page, email);
      await page.waitForURL('**/login/mfa');
      await page.getByLabel('Authentication code').fill('000000');
      await page.getByRole('button', { name: 'Verify' }).click();
      await expectText(page.locator('#mfa-code-error')).toContain('This code is not valid');
      await page.getByLabel('Authentication code').fill(await totpCodeAt(secret, t.clock.now()));
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.waitForURL('**/account');
      await expectText(page.locator('#sessions')).toContain('This device');
      await expectText(page.locator('#sessions')).toContain('Chrome');

      await logOut(page);
      await logIn(page, email);
      await page.waitForURL('**/login/mfa');
      await page.getByLabel('Recovery code').fill(recoveryCodes[0] ?? '');
      await page.getByRole('button', { name: 'Use recovery code' }).click();
      await page.waitForURL('**/account');
      await expectText(page.locator('#two-factor')).toContain('9 unused recovery codes');
    });
  });

  it('an org admin invites a member, the member joins, the admin changes their role', async () => {
    const admin = await newPerson();
    const member = await newPerson();
    const ownerEmail = uniqueEmail('e2e-admin');
    const memberEmail = uniqueEmail('e2e-member');
    await t.services.orgs.signup({ orgName: 'Invite Oy', name: 'Ada Admin', email: ownerEmail, password: GOOD_PASSWORD, ageConfirmed: true, context: { ip: null, userAgent: null } });
    await withScreenshots('invite and role', () => contexts, async () => {
      await logIn(admin, ownerEmail);
      await admin.waitForURL('**/account');
      await admin.getByRole('link', { name: 'Organization admin' }).click();
      await admin.waitForURL('**/orgs/*/admin');
      const invite = admin.locator('form[action$="/admin/invitations"]');
      await invite.getByLabel('Email').fill(memberEmail);
      await invite.getByLabel('Role').selectOption('member');
      await invite.getByRole('button', { name: 'Send invitation' }).click();
      await admin.waitForURL(/done=invited/);
      await expectText(admin.getByRole('status')).toContain('The invitation is sent.');
      await expectText(admin.locator('#members')).toContain(memberEmail);

      // The invited person follows the link from the email.
      await member.goto(`/invitations/accept?token=${mailToken(t, memberEmail, 'invitation')}`);
      await member.getByLabel('Your name').fill('Mo Member');
      await member.getByLabel('Password').fill(GOOD_PASSWORD);
      await member.getByLabel('I am 16 or older').check();
      await member.getByRole('button', { name: 'Join' }).click();
      await member.waitForURL('**/account');
      await expectText(member.locator('main')).toContain('Invite Oy');
      // A member has no admin page.
      expect(await member.getByRole('link', { name: 'Organization admin' }).count()).toBe(0);

      await admin.reload();
      await admin.getByLabel('Role of Mo Member').selectOption('admin');
      await admin.getByRole('button', { name: 'Change role of Mo Member' }).click();
      await admin.waitForURL(/done=role-changed/);
      await expectText(admin.getByRole('status')).toContain('The role is changed.');
      expect(await admin.getByLabel('Role of Mo Member').inputValue()).toBe('admin');

      // Now an admin, the member sees the admin page.
      await member.reload();
      await member.getByRole('link', { name: 'Organization admin' }).click();
      await member.waitForURL('**/orgs/*/admin');
    });
  });

  it('a staff member requests access, another approves, the requester reads the organization under the grant', async () => {
    const requester = await newPerson();
    const approver = await newPerson();
    const customer = await t.services.orgs.signup({ orgName: 'Customer Oy', name: 'Cy Customer', email: uniqueEmail('e2e-customer'), password: GOOD_PASSWORD, ageConfirmed: true, context: { ip: null, userAgent: null } });
    await t.services.orgs.setPlan(customer.org.id, 'enterprise', { type: 'system', id: null });
    const supportEmail = uniqueEmail('e2e-support');
    const securityEmail = uniqueEmail('e2e-security');
    await t.services.staff.createStaff({ email: supportEmail, name: 'Sam Support', role: 'support', ndaSignedAt: '2026-01-02', password: GOOD_PASSWORD });
    await t.services.staff.createStaff({ email: securityEmail, name: 'Sid Security', role: 'security_admin', ndaSignedAt: '2026-01-02', password: GOOD_PASSWORD });

    await withScreenshots('staff access', () => contexts, async () => {
      // Staff must enrol TOTP before the console answers; they do it through the pages.
      for (const [page, email] of [[requester, supportEmail], [approver, securityEmail]] as const) {
        await logIn(page, email);
        await page.waitForURL('**/staff');
        await expectText(page.locator('main')).toContain('Two-factor authentication needed');
        await page.getByRole('link', { name: 'Set up two-factor authentication' }).click();
        await enrolTotp(page);
        await page.goto('/staff');
        await expectText(page.getByRole('heading', { level: 1 })).toContain('Staff console');
      }

      await requester.getByLabel('Organization ID').fill(customer.org.id);
      await requester.getByLabel('Access', { exact: true }).selectOption('read');
      await requester.getByLabel('Reason').fill('Customer ticket: members cannot log in');
      await requester.getByLabel('Ticket (optional)').fill('SUP-1234');
      await requester.getByRole('button', { name: 'Request access' }).click();
      await requester.waitForURL(/done=requested/);
      await expectText(requester.getByRole('status')).toContain('Your access request is sent for approval.');
      await expectText(requester.locator('#pending')).toContain(customer.org.id);

      await approver.reload();
      await expectText(approver.locator('#approvals')).toContain('Sam Support');
      await approver.locator('#approvals').getByRole('button', { name: /^Approve/ }).click();
      await approver.waitForURL(/done=approved/);
      await expectText(approver.getByRole('status')).toContain('The access request is approved.');

      await requester.reload();
      await expectText(requester.locator('#grants')).toContain('left');
      await requester.locator('#grants').getByRole('link', { name: /^Open/ }).click();
      await requester.waitForURL(`**/staff/orgs/${customer.org.id}`);
      await expectText(requester.locator('main')).toContain('Cy Customer');

      // The customer sees the access in their log; the security admin finds it in the audit.
      const owner = await newPerson();
      await logIn(owner, customer.user.email);
      await owner.waitForURL('**/account');
      await owner.goto(`/orgs/${customer.org.id}/admin#staff-access`);
      await expectText(owner.locator('#staff-access')).toContain('Sam Support');
      await expectText(owner.locator('#staff-access')).toContain('Customer ticket: members cannot log in');

      await approver.getByRole('link', { name: 'Search the audit log' }).click();
      await approver.getByLabel('Organization ID').fill(customer.org.id);
      await approver.getByLabel('Action', { exact: true }).fill('staff.access.read');
      await approver.getByRole('button', { name: 'Search' }).click();
      await approver.waitForURL(/\/staff\/audit\?/);
      await expectText(approver.locator('main table')).toContain('staff.access.read');
    });
  });

  it('an admin sets up OIDC single sign-on (domain, TXT record, connection); a person logs in with SSO by email', async () => {
    const admin = await newPerson();
    const person = await newPerson();
    const domain = `sso-${Date.now().toString(36)}.example`;
    const ownerEmail = uniqueEmail('e2e-sso-owner');
    const signed = await t.services.orgs.signup({ orgName: 'Federated Oy', name: 'Fay Federated', email: ownerEmail, password: GOOD_PASSWORD, ageConfirmed: true, context: { ip: null, userAgent: null } });
    await t.services.orgs.setPlan(signed.org.id, 'enterprise', { type: 'system', id: null });
    idp.accounts.set('sub-e2e-1', { email: `sid.sso@${domain}`, email_verified: true, name: 'Sid Sso' });
    idp.loginAs = 'sub-e2e-1';
    const client = idp.client(0);

    await withScreenshots('oidc sso', () => contexts, async () => {
      await logIn(admin, ownerEmail);
      await admin.waitForURL('**/account');
      await admin.goto(`/orgs/${signed.org.id}/admin#sso`);
      await claimAndVerifyDomain(admin, domain);

      const oidc = admin.locator('form[action$="/admin/sso/connections"]');
      expect(await admin.locator('#oidc-redirect-uri').textContent()).toBe(`${t.origin}/v1/sso/oidc/callback`);
      await oidc.getByLabel('Connection name').fill('Test IdP');
      await oidc.getByLabel('Issuer URL').fill(idp.issuer);
      await oidc.getByLabel('Client ID').fill(client.clientId);
      await oidc.getByLabel('Client secret').fill(client.clientSecret);
      await oidc.getByLabel('Email domains').fill(domain);
      await oidc.getByRole('button', { name: 'Add connection' }).click();
      await admin.waitForURL(/done=connection-added/);
      await expectText(admin.locator('#sso')).toContain('Test IdP (OIDC)');

      // A person of that domain signs in with single sign-on.
      await person.goto('/login');
      await person.locator('form[action="/login/sso"]').getByLabel('Email').fill(`sid.sso@${domain}`);
      await person.getByRole('button', { name: 'Continue with SSO' }).click();
      await person.getByRole('link', { name: 'Continue to sign in' }).click();
      await person.waitForURL(`${t.origin}/account`);
      await expectText(person.locator('main')).toContain('Sid Sso');
      await expectText(person.locator('#sessions')).toContain('Single sign-on (OIDC)');

      // An email without a connection gets a message next to the field.
      await person.goto('/login');
      await person.locator('form[action="/login/sso"]').getByLabel('Email').fill('nobody@unknown-domain.example');
      await person.getByRole('button', { name: 'Continue with SSO' }).click();
      await expectText(person.locator('#sso-email-error')).toContain('Single sign-on is not set up for this email address');
    });
  });

  it('an org admin adds a SAML connection from the IdP metadata; a person logs in through the SAML IdP', async () => {
    // The admin page is also checked with axe (injected: this context bypasses CSP; the person's does not).
    const admin = await newPerson({ bypassCSP: true });
    const person = await newPerson();
    const domain = `saml-${Date.now().toString(36)}.example`;
    const ownerEmail = uniqueEmail('e2e-saml-owner');
    const signed = await t.services.orgs.signup({ orgName: 'Assertion Oy', name: 'Sara Saml', email: ownerEmail, password: GOOD_PASSWORD, ageConfirmed: true, context: { ip: null, userAgent: null } });
    await t.services.orgs.setPlan(signed.org.id, 'enterprise', { type: 'system', id: null });
    // samlify as the IdP, in-process; its SSO URL is answered by the person's browser context below.
    const samlIdp = new TestSamlIdp('https://idp.example.test/metadata');

    await withScreenshots('saml sso', () => contexts, async () => {
      await logIn(admin, ownerEmail);
      await admin.waitForURL('**/account');
      await admin.goto(`/orgs/${signed.org.id}/admin#sso`);
      await claimAndVerifyDomain(admin, domain);

      const saml = admin.locator('form[action$="/admin/sso/saml"]');
      await saml.getByLabel('Connection name').fill('Corporate SAML');
      await saml.getByLabel('Email domains').fill(domain);
      // The wrong file first: the message is next to the field, and the form keeps what was typed.
      await saml.getByLabel('IdP metadata (XML)').fill('<html><body>Download failed</body></html>');
      await saml.getByRole('button', { name: 'Add SAML connection' }).click();
      await expectText(admin.locator('#saml-idpMetadataXml-error')).toContain('The root element must be an md:EntityDescriptor');
      expect(await saml.getByLabel('Email domains').inputValue()).toBe(domain);
      expect(await seriousViolations(admin)).toEqual([]);
      await saml.getByLabel('IdP metadata (XML)').fill(samlIdp.metadataXml());
      await saml.getByRole('button', { name: 'Add SAML connection' }).click();
      await admin.waitForURL(/done=saml-connection-added/);
      await expectText(admin.getByRole('status')).toContain('The SAML connection is added.');

      // The card shows what to paste into the IdP: our entity ID, ACS URL and metadata URL.
      const card = admin.locator('#sso article', { hasText: 'Corporate SAML (SAML)' });
      const connectionId = ((await card.getAttribute('id')) ?? '').replace(/^connection-/, '');
      expect(connectionId).not.toBe('');
      const shown = async (what: string): Promise<string> => ((await card.locator(`#connection-${connectionId}-${what}`).textContent()) ?? '').trim();
      const spEntityId = await shown('sp-entity-id');
      const acsUrl = await shown('acs-url');
      const metadataUrl = await shown('metadata-url');
      expect(acsUrl).toBe(`${t.origin}/v1/sso/saml/${connectionId}/acs`);
      expect(metadataUrl).toBe(`${t.origin}/v1/sso/saml/${connectionId}/metadata`);
      expect(spEntityId).toBe(metadataUrl);
      await expectText(card).toContain('https://idp.example.test/saml/sso');
      expect(await seriousViolations(admin)).toEqual([]);
      // The IdP admin loads our metadata from the URL shown.
      const spMetadata = await fetch(metadataUrl);
      expect(spMetadata.status).toBe(200);
      const spMetadataXml = await spMetadata.text();
      expect(spMetadataXml).toContain(acsUrl);

      // The IdP: reads our AuthnRequest, "logs the person in", answers with a signed response to POST back.
      const authnRequests: string[] = [];
      await person.context().route('https://idp.example.test/**', async (route) => {
        const authnRequest = await samlIdp.receiveAuthnRequest(route.request().url(), spMetadataXml);
        authnRequests.push(authnRequest.id);
        expect(authnRequest.acsUrl).toBe(acsUrl);
        const samlResponse = await samlIdp.response({
          spMetadataXml, acsUrl, spEntityId, inResponseTo: authnRequest.id, nameId: 'sam-persistent-1', email: `sam.saml@${domain}`, name: 'Sam Saml',
        });
        await route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: autoPostPage(authnRequest.acsUrl, samlResponse) });
      });

      await person.goto('/login');
      await person.locator('form[action="/login/sso"]').getByLabel('Email').fill(`sam.saml@${domain}`);
      await person.getByRole('button', { name: 'Continue with SSO' }).click();
      await person.getByRole('link', { name: 'Continue to sign in' }).click();
      await person.waitForURL('https://idp.example.test/**');
      // A cross-site, top-level POST from the IdP's page to our ACS.
      const [acsPost] = await Promise.all([person.waitForRequest(acsUrl), person.getByRole('button', { name: 'Continue to the service' }).click()]);
      expect(acsPost.method()).toBe('POST');
      // Not our origin: the IdP's, or `null` (Chromium sends that here, https → http being a downgrade).
      expect(['https://idp.example.test', 'null']).toContain(await acsPost.headerValue('origin'));
      await person.waitForURL(`${t.origin}/account`);
      expect(authnRequests).toHaveLength(1);
      await expectText(person.locator('main')).toContain('Sam Saml');
      await expectText(person.locator('main')).toContain('Assertion Oy');
      await expectText(person.locator('#sessions')).toContain('Single sign-on (SAML)');
    });
  });

  it('a person sets consents, downloads their data and deletes their account (confirming it is them)', async () => {
    const page = await newPerson();
    const email = uniqueEmail('e2e-erase');
    await t.services.orgs.signup({ orgName: 'Leaving Oy', name: 'Lee Leaving', email, password: GOOD_PASSWORD, ageConfirmed: true, context: { ip: null, userAgent: null } });
    await withScreenshots('erasure', () => contexts, async () => {
      await logIn(page, email);
      await page.waitForURL('**/account');
      await page.getByLabel('Email me product news and offers').check();
      await page.getByRole('button', { name: 'Save choices' }).click();
      await page.waitForURL(/done=consents-saved/);
      expect(await page.getByLabel('Email me product news and offers').isChecked()).toBe(true);

      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download my data' }).click()]);
      const exported = JSON.parse(readFileSync(await download.path(), 'utf8')) as { subject: { email: string }; consents: unknown };
      expect(exported.subject.email).toBe(email);
      expect(JSON.stringify(exported.consents)).toContain('marketing');

      // Deleting needs an authentication within 10 minutes: the page asks for the password first.
      t.clock.advance(11 * 60_000);
      await page.getByLabel('I understand my account cannot be restored').check();
      await page.getByLabel('Also delete my organization').check();
      await page.getByRole('button', { name: 'Delete my account' }).click();
      await page.waitForURL(/\/account\/confirm/);
      await page.getByLabel('Password').fill(GOOD_PASSWORD);
      await page.getByRole('button', { name: 'Confirm' }).click();
      await page.waitForURL(/done=confirmed/);
      await page.getByLabel('I understand my account cannot be restored').check();
      await page.getByLabel('Also delete my organization').check();
      await page.getByRole('button', { name: 'Delete my account' }).click();
      await page.waitForURL(/\/login\?done=account-deleted/);
      expect(await t.services.users.byEmail(email)).toBeNull();

      await logIn(page, email);
      await expectText(page.locator('.error-summary')).toContain('The email or password is incorrect.');
    });
  });

  it('the main pages have no serious accessibility violations (axe-core)', async () => {
    const ownerEmail = uniqueEmail('e2e-a11y');
    const signed = await t.services.orgs.signup({ orgName: 'Axe Oy', name: 'Al Axe', email: ownerEmail, password: GOOD_PASSWORD, ageConfirmed: true, context: { ip: null, userAgent: null } });
    await t.services.orgs.setPlan(signed.org.id, 'enterprise', { type: 'system', id: null });
    const staffEmail = uniqueEmail('e2e-a11y-staff');
    await t.services.staff.createStaff({ email: staffEmail, name: 'Ax Staff', role: 'security_admin', ndaSignedAt: '2026-01-02', password: GOOD_PASSWORD });
    // axe is injected as a script, which the page's CSP rightly forbids: this context bypasses CSP, for the test only.
    const visitor = await newPerson({ bypassCSP: true });
    const owner = await newPerson({ bypassCSP: true });
    const staff = await newPerson({ bypassCSP: true });
    const failures: string[] = [];
    const check = async (page: Page, label: string): Promise<void> => {
      for (const v of await seriousViolations(page)) failures.push(`${label}: ${v.id} (${v.impact}) ${v.help} — ${JSON.stringify(v.nodes)}`);
    };
    await withScreenshots('accessibility', () => contexts, async () => {
      for (const path of ['/login', '/signup', '/password-reset', '/password-reset?token=abcdefghijklmnopqrstuvwxyz', '/invitations/accept?token=abcdefghijklmnopqrstuvwxyz']) {
        await visitor.goto(path);
        await check(visitor, path);
      }
      // A form with errors next to its fields.
      await visitor.goto('/signup');
      await visitor.getByRole('button', { name: 'Create organization' }).click();
      await visitor.locator('.error-summary').waitFor();
      await check(visitor, '/signup with errors');

      await logIn(owner, ownerEmail);
      await owner.waitForURL('**/account');
      await check(owner, '/account');
      await owner.goto(`/orgs/${signed.org.id}/admin`);
      await check(owner, '/orgs/:orgId/admin');
      await owner.goto('/account');
      await owner.getByRole('button', { name: 'Set up two-factor authentication' }).click();
      await check(owner, 'two-factor enrolment');

      await logIn(staff, staffEmail);
      await staff.waitForURL('**/staff');
      await check(staff, 'staff console without two-factor');
      await staff.getByRole('link', { name: 'Set up two-factor authentication' }).click();
      await enrolTotp(staff);
      await check(staff, 'recovery codes');
      await staff.goto('/staff');
      await check(staff, '/staff');
      await staff.goto('/staff/audit?action=auth.login.succeeded');
      await check(staff, '/staff/audit');
      expect(failures, failures.join('\n')).toEqual([]);
      // The check itself works: a page with a nameless image and field is caught.
      await visitor.setContent('<!doctype html><html lang="en"><title>bad</title><main><img src="data:,"><input></main></html>');
      expect((await seriousViolations(visitor)).map((v) => v.id)).toEqual(expect.arrayContaining(['image-alt', 'label']));
    });
  });
});
