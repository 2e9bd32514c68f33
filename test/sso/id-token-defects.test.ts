/**
 * Forged and defective ID tokens and IdP responses that a certified
 * provider never produces, from a tiny jose-based IdP: signature forgery
 * (another key, `alg: none`, HMAC with the client secret as key — the
 * algorithm-confusion attack), tokens for another audience or authorized
 * party (or for us and an untrusted extra audience), token substitution from another issuer, replay of a token minted
 * for another login (nonce), expired and back- or forward-dated tokens,
 * userinfo for another subject, and RFC 9207 `iss` mix-up. Each is refused
 * with 400 sso_failed and an audited reason (OIDC Core §3.1.3.7, §5.3.2).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SignedUp } from '../helpers/app.js';
import { JoseIdp, type IdpDefect } from '../helpers/jose-idp.js';
import {
  buildSsoTestApp, createConnection, createdConnection, enterpriseOwner, lastSsoFailureReason, sessionFrom, ssoLogin, verifyDomain, type SsoTestApp,
} from '../helpers/sso.js';

let idp: JoseIdp;
let t: SsoTestApp;
let owner: SignedUp;
let connectionId: string;

beforeAll(async () => {
  // The IdP signs with the app's clock, as a well-synchronised IdP would.
  idp = await JoseIdp.start({ now: () => (t ? t.clock.now().getTime() : Date.now()) });
});
afterAll(async () => {
  await idp.close();
});
beforeEach(async () => {
  idp.defect = 'none';
  idp.metadataOverrides = {};
  idp.claims = { sub: 'jose-user', email: 'jose@acme.test', email_verified: true, name: 'Jose User' };
  t = await buildSsoTestApp();
  owner = await enterpriseOwner(t);
  await verifyDomain(t, owner, 'acme.test');
  ({ id: connectionId } = await createdConnection(t, owner, { issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, domains: ['acme.test'] }));
});
afterEach(async () => {
  await t.close();
});

it('logs in with a well-formed response (control for the cases below)', async () => {
  const round = await ssoLogin(t, { connectionId });
  expect(round.callback.statusCode, round.callback.body).toBe(302);
  expect(sessionFrom(round.callback)).not.toBeNull();
});

/** The two shapes OIDC Core §2 allows for `aud` naming only us: a string (above) and a one-element array. */
it('logs in with aud given as a one-element array', async () => {
  idp.defect = 'aud_as_array';
  const round = await ssoLogin(t, { connectionId });
  expect(round.callback.statusCode, round.callback.body).toBe(302);
  expect(sessionFrom(round.callback)).not.toBeNull();
});

/** Token meant for several relying parties: the public detail says why, the audit names the reason. */
it('explains the refusal of an untrusted extra audience', async () => {
  idp.defect = 'multi_aud_untrusted';
  const round = await ssoLogin(t, { connectionId });
  expect(round.callback.statusCode).toBe(400);
  expect(round.callback.json()).toMatchObject({ code: 'sso_failed', detail: expect.stringContaining('other applications') });
  expect(lastSsoFailureReason(t)).toBe('audience_untrusted');
});

describe.each<[string, IdpDefect, string]>([
  ['an ID token signed by another key (bad signature)', 'bad_signature', 'signature_invalid'],
  ['an unsigned ID token (alg: none)', 'alg_none', 'alg_refused'],
  ['an ID token for another audience', 'wrong_aud', 'audience_mismatch'],
  ['several audiences without azp', 'multi_aud_no_azp', 'audience_mismatch'],
  ['several audiences with another azp', 'multi_aud_wrong_azp', 'azp_mismatch'],
  // OIDC Core §3.1.3.7 rule 3: an audience we do not trust, even beside ours and with azp = us.
  ['an untrusted extra audience, azp ours', 'multi_aud_untrusted', 'audience_untrusted'],
  ['one audience with another azp', 'single_aud_wrong_azp', 'azp_mismatch'],
  ['an ID token from another issuer', 'wrong_iss', 'issuer_mismatch'],
  ['a nonce from another login (replayed token)', 'wrong_nonce', 'nonce_mismatch'],
  ['no nonce', 'missing_nonce', 'nonce_mismatch'],
  ['an expired ID token (beyond the 60 s leeway)', 'expired', 'token_expired'],
  ['an ID token issued in the future', 'iat_in_future', 'iat_in_future'],
  ['an ID token issued before this login began', 'iat_before_login', 'iat_before_login'],
  ['userinfo for another subject', 'userinfo_sub_mismatch', 'userinfo_subject_mismatch'],
  ['an iss response parameter of another issuer (RFC 9207)', 'iss_param_wrong', 'iss_mismatch'],
  ['no iss response parameter although advertised (RFC 9207)', 'iss_param_missing', 'iss_missing'],
])('%s', (_label, defect, reason) => {
  it(`is refused (${reason})`, async () => {
    idp.defect = defect;
    const round = await ssoLogin(t, { connectionId });
    expect(round.callback.statusCode, round.callback.body).toBe(400);
    expect(round.callback.json()).toMatchObject({ code: 'sso_failed' });
    expect(sessionFrom(round.callback)).toBeNull();
    expect(lastSsoFailureReason(t)).toBe(reason);
    expect(t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM sso_identities').get()).toEqual({ n: 0 });
  });
});

/** Algorithm confusion: even if the IdP metadata offers HS256, an HMAC-signed ID token is refused. */
it('refuses an HS256 ID token even when the IdP advertises HS256', async () => {
  idp.metadataOverrides = { id_token_signing_alg_values_supported: ['HS256', 'RS256'] };
  const { id } = await createdConnection(t, owner, { issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, domains: ['acme.test'] });
  idp.defect = 'hs256';
  const round = await ssoLogin(t, { connectionId: id });
  expect(round.callback.statusCode).toBe(400);
  expect(lastSsoFailureReason(t)).toBe('alg_refused');
});

it('accepts an ID token that expired 30 s ago (within the 60 s leeway)', async () => {
  idp.defect = 'expired_within_leeway';
  const started = await ssoLogin(t, { connectionId });
  expect(started.callback.statusCode).toBe(302);
});

/** An email_verified claim that is not a JSON true (e.g. the string "true") does not count as verified. */
it('treats email_verified "true" (a string) as unverified', async () => {
  idp.claims = { ...idp.claims, email_verified: 'true' };
  const round = await ssoLogin(t, { connectionId });
  expect(round.callback.statusCode).toBe(400);
  expect(lastSsoFailureReason(t)).toBe('email_unverified');
});

describe('at connection creation', () => {
  it.each([
    ['only none', ['none']],
    ['only HMAC', ['HS256', 'HS512']],
  ])('refuses an IdP that signs ID tokens with %s', async (_label, algs) => {
    idp.metadataOverrides = { id_token_signing_alg_values_supported: algs };
    const response = await createConnection(t, owner, { issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, domains: [] });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'validation_failed', errors: [{ field: 'issuer' }] });
  });

  it('refuses an IdP without PKCE S256', async () => {
    idp.metadataOverrides = { code_challenge_methods_supported: ['plain'] };
    const response = await createConnection(t, owner, { issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, domains: [] });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors[0].message).toContain('PKCE');
  });

  /** Issuer mix-up at discovery: a discovery document naming another issuer (OpenID Connect Discovery §4.3). */
  it('refuses a discovery document whose issuer differs from the URL', async () => {
    idp.metadataOverrides = { issuer: 'https://someone-else.example' };
    const response = await createConnection(t, owner, { issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, domains: [] });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors[0]).toMatchObject({ field: 'issuer', message: 'the discovery document names a different issuer' });
  });

  it('refuses a discovery document URL given as the issuer', async () => {
    const response = await createConnection(t, owner, { issuer: `${idp.issuer}/.well-known/openid-configuration`, clientId: idp.clientId, clientSecret: idp.clientSecret, domains: [] });
    expect(response.statusCode).toBe(400);
  });
});
