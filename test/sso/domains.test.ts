import { execFile } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addMember, asUser, auditActions, PROJECT_ROOT, type SignedUp } from '../helpers/app.js';
import { buildSsoTestApp, enterpriseOwner, verifyDomain, type SsoTestApp } from '../helpers/sso.js';

/**
 * Organization domains: claim → TXT record at `_cleverom-challenge.<domain>`
 * → verification; one verifying organization per domain; the manual
 * override (CLI `domain:verify`) audited as such.
 */

let t: SsoTestApp;
let owner: SignedUp;

beforeEach(async () => {
  t = await buildSsoTestApp();
  owner = await enterpriseOwner(t);
});
afterEach(async () => {
  await t.close();
});

const domainsUrl = (o: SignedUp): string => `/v1/orgs/${o.orgId}/domains`;

function claim(o: SignedUp, domain: string) {
  return t.app.inject({ method: 'POST', url: domainsUrl(o), ...asUser(o.token), payload: { domain } });
}

function verify(o: SignedUp, domain: string) {
  return t.app.inject({ method: 'POST', url: `${domainsUrl(o)}/${domain}/verify`, ...asUser(o.token) });
}

describe('claim and verify by DNS', () => {
  it('issues a token and the TXT record to publish', async () => {
    const response = await claim(owner, 'Example.TEST');
    expect(response.statusCode, response.body).toBe(201);
    const body = response.json();
    expect(body).toMatchObject({ domain: 'example.test', verified: false, verifiedAt: null, verificationMethod: null });
    expect(body.verificationToken).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(body.txtRecord).toEqual({ name: '_cleverom-challenge.example.test', type: 'TXT', value: `cleverom-verification=${body.verificationToken}` });
    expect(auditActions(t).at(-1)).toBe('org.domain.claimed');
  });

  it('answers 400 naming domain while the TXT record is missing or wrong, and 200 once it is published', async () => {
    const { verificationToken } = (await claim(owner, 'example.test')).json<{ verificationToken: string }>();
    const missing = await verify(owner, 'example.test');
    expect(missing.statusCode).toBe(400);
    expect(missing.json()).toMatchObject({ code: 'validation_failed', errors: [{ field: 'domain' }] });
    expect(t.dns.queries).toContain('_cleverom-challenge.example.test');

    t.dns.txt.set('_cleverom-challenge.example.test', [['cleverom-verification=someone-elses-token']]);
    expect((await verify(owner, 'example.test')).statusCode).toBe(400);
    // A record at the bare domain does not count: only the challenge label does.
    t.dns.txt.set('example.test', [[`cleverom-verification=${verificationToken}`]]);
    expect((await verify(owner, 'example.test')).statusCode).toBe(400);

    // Long TXT values arrive split in 255-byte character-strings; they are joined.
    const value = `cleverom-verification=${verificationToken}`;
    t.dns.txt.set('_cleverom-challenge.example.test', [['v=spf1 -all'], [value.slice(0, 10), value.slice(10)]]);
    const ok = await verify(owner, 'example.test');
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toMatchObject({ domain: 'example.test', verified: true, verificationMethod: 'dns' });
    expect(auditActions(t).filter((a) => a.startsWith('org.domain.'))).toEqual([
      'org.domain.claimed', 'org.domain.verification_failed', 'org.domain.verification_failed', 'org.domain.verification_failed', 'org.domain.verified',
    ]);
    // Verifying again is harmless.
    expect((await verify(owner, 'example.test')).statusCode).toBe(200);
  });

  it('lists the claims, and releases one', async () => {
    await verifyDomain(t, owner, 'a.test');
    await claim(owner, 'b.test');
    const list = await t.app.inject({ method: 'GET', url: domainsUrl(owner), ...asUser(owner.token) });
    expect(list.json().domains.map((d: { domain: string; verified: boolean }) => [d.domain, d.verified])).toEqual([
      ['a.test', true],
      ['b.test', false],
    ]);
    const released = await t.app.inject({ method: 'DELETE', url: `${domainsUrl(owner)}/a.test`, ...asUser(owner.token) });
    expect(released.statusCode).toBe(204);
    expect(auditActions(t).at(-1)).toBe('org.domain.released');
  });

  it.each([['acme'], ['-acme.test'], ['acme..test'], ['acme.test/path'], ['http://acme.test'], ['ac me.test']])('refuses the domain %j', async (domain) => {
    const response = await claim(owner, domain);
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('validation_failed');
  });

  it('answers 404 verifying a domain that was not claimed', async () => {
    expect((await verify(owner, 'never.test')).statusCode).toBe(404);
  });

  it('needs an owner or admin of an sso organization', async () => {
    const member = await addMember(t, owner, 'member');
    expect((await claim(member, 'x.test')).statusCode).toBe(403);
  });
});

describe('one organization per domain (409 conflict)', () => {
  it('refuses a second claim by the same organization', async () => {
    await claim(owner, 'dup.test');
    const again = await claim(owner, 'dup.test');
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('conflict');
  });

  /** Domain squatting: a pending claim blocks nobody; verification decides, once. */
  it('lets two organizations hold pending claims; the first to verify wins, the other gets 409', async () => {
    const other = await enterpriseOwner(t);
    const mine = (await claim(owner, 'contested.test')).json<{ verificationToken: string }>();
    const theirs = (await claim(other, 'contested.test')).json<{ verificationToken: string }>();
    t.dns.publish('contested.test', mine.verificationToken);
    expect((await verify(owner, 'contested.test')).statusCode).toBe(200);
    t.dns.publish('contested.test', theirs.verificationToken);
    const lost = await verify(other, 'contested.test');
    expect(lost.statusCode).toBe(409);
    const third = await enterpriseOwner(t);
    expect((await claim(third, 'contested.test')).statusCode).toBe(409);
  });
});

describe('manual verification (operator / staff override)', () => {
  it('verifies through the service hook, audited as manual with the acting principal', async () => {
    const view = await t.services.domains.verifyManually({ orgId: owner.orgId, domain: 'manual.test', actor: { type: 'staff', id: 'staff-1' }, reason: 'ticket 42' });
    expect(view).toMatchObject({ domain: 'manual.test', verified: true, verificationMethod: 'manual' });
    const event = t.services.audit.list({ action: 'org.domain.verified' }).at(-1);
    expect(event).toMatchObject({ actorType: 'staff', actorId: 'staff-1', orgId: owner.orgId, data: { domain: 'manual.test', method: 'manual', reason: 'ticket 42' } });
  });

  it('refuses to verify manually a domain another organization verified', async () => {
    await verifyDomain(t, owner, 'taken.test');
    const other = await enterpriseOwner(t);
    await expect(t.services.domains.verifyManually({ orgId: other.orgId, domain: 'taken.test', actor: { type: 'system', id: null } })).rejects.toMatchObject({ code: 'conflict' });
  });

  it('runs as the CLI verb domain:verify --org ID --domain D', async () => {
    const run = await new Promise<{ code: number; stdout: string }>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', 'src/cli.ts', 'domain:verify', '--org', owner.orgId, '--domain', 'cli.test'],
        {
          cwd: PROJECT_ROOT,
          timeout: 20_000,
          env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: `file:${t.databaseFile}`, SECRETS_KEY: Buffer.alloc(32, 7).toString('base64') },
        },
        (error, stdout) => {
          if (error && typeof error.code !== 'number') reject(error);
          else resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout });
        },
      );
    });
    expect(run.code, run.stdout).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: true, orgId: owner.orgId, domain: 'cli.test', verified: true, verificationMethod: 'manual' });
    const event = t.services.audit.list({ action: 'org.domain.verified' }).at(-1);
    expect(event).toMatchObject({ actorType: 'system', data: { domain: 'cli.test', method: 'manual' } });
  });
});
