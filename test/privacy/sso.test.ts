/**
 * Privacy rights for a person who signs in through SSO (a real OpenID
 * Provider on 127.0.0.1): the export lists their linked identities
 * (connection, subject, asserted email); erasure unlinks them and leaves
 * neither the subject nor the asserted email nor the name in the database
 * file. The next SSO login with the same subject starts from scratch.
 */
import { describe, expect, it } from 'vitest';
import { asUser, type SignedUp } from '../helpers/app.js';
import type { TestOidcProvider } from '../helpers/oidc-provider.js';
import { sessionFrom, ssoLogin, useOidcSsoSuite, type SsoTestApp } from '../helpers/sso.js';
import { foundInFile, rawDatabaseBytes } from './helpers.js';

let idp: TestOidcProvider;
let t: SsoTestApp;
let owner: SignedUp;
let connectionId: string;

useOidcSsoSuite({ owner: { email: 'owner@privacy-sso.test' }, domain: 'privacy-sso.test', bind: (s) => ({ idp, t, owner, connectionId } = s) });

const SUBJECT = 'idp-subject-7f3c9e1d-privacy';
const EMAIL = 'saskia.ssoperson@privacy-sso.test';
const NAME = 'Saskia Ssoperson-Unique';

async function ssoSession(): Promise<string> {
  idp.accounts.set(SUBJECT, { email: EMAIL, email_verified: true, name: NAME });
  idp.loginAs = SUBJECT;
  const round = await ssoLogin(t, { email: EMAIL });
  const token = sessionFrom(round.callback);
  expect(token, round.callback.body).toBeTruthy();
  return token ?? '';
}

describe('SSO identities', () => {
  it('are exported, then unlinked by erasure without a trace in the database file', async () => {
    const token = await ssoSession();
    const exported = await t.app.inject({ method: 'GET', url: '/v1/me/export', ...asUser(token) });
    expect(exported.statusCode, exported.body).toBe(200);
    const doc = exported.json<{ profile: { email: string; name: string }; ssoIdentities: Record<string, unknown>[]; subject: { userId: string } }>();
    expect(doc.profile).toMatchObject({ email: EMAIL, name: NAME });
    expect(doc.ssoIdentities).toEqual([expect.objectContaining({ connectionId, subject: SUBJECT, email: EMAIL, protocol: 'oidc', connectionName: 'Corporate IdP' })]);

    const erased = await t.app.inject({ method: 'POST', url: '/v1/me/erasure', ...asUser(token) });
    expect(erased.statusCode, erased.body).toBe(202);
    expect(t.services.database.sqlite.prepare('SELECT COUNT(*) AS n FROM sso_identities WHERE user_id = ?').get(doc.subject.userId)).toEqual({ n: 0 });
    expect(foundInFile(rawDatabaseBytes(t), [SUBJECT, EMAIL, NAME])).toEqual([]);
    expect(t.services.audit.verify().ok).toBe(true);

    // The same person signing in again is a new account: nothing was kept to re-attach.
    const again = await ssoSession();
    const me = await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(again) });
    expect(me.json().user.id).not.toBe(doc.subject.userId);
  });

  it('a restricted SSO user cannot sign in through the IdP either', async () => {
    const token = await ssoSession();
    const userId = (await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(token) })).json().user.id as string;
    const restricted = await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/members/${userId}/restriction`, ...asUser(owner.token), payload: { restricted: true } });
    expect(restricted.statusCode).toBe(200);
    idp.loginAs = SUBJECT;
    const round = await ssoLogin(t, { email: EMAIL });
    expect(sessionFrom(round.callback)).toBeNull();
    expect(round.callback.statusCode).toBeGreaterThanOrEqual(400);
  });
});
