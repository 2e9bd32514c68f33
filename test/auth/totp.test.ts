import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GOOD_PASSWORD, addMember, asUser, auditActions, buildTestApp, sessionCookie, signup, type SignedUp, type TestApp } from '../helpers/app.js';
import { enrolTotp, makeEnterprise, pendingCookie, totpCodeAt } from '../helpers/totp.js';

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

const STEP = 30_000;

async function passwordStep(email: string, password = GOOD_PASSWORD) {
  return t.app.inject({ method: 'POST', url: '/v1/login', payload: { email, password } });
}

function mfaStep(pending: string, payload: Record<string, string>) {
  return t.app.inject({ method: 'POST', url: '/v1/login/mfa', cookies: { cleverom_mfa: pending }, payload });
}

async function enterpriseOwner(): Promise<SignedUp> {
  const owner = await signup(t.app);
  await makeEnterprise(t, owner.orgId);
  return owner;
}

describe('enrolment', () => {
  it('returns a secret, an otpauth URL for issuer Cleverom and an SVG QR code; the factor is pending until confirmed', async () => {
    const owner = await enterpriseOwner();
    const start = await t.app.inject({ method: 'POST', url: '/v1/me/mfa/totp', ...asUser(owner.token) });
    expect(start.statusCode).toBe(201);
    const body = start.json();
    expect(body.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(body.otpauthUrl).toMatch(/^otpauth:\/\/totp\/Cleverom:/);
    expect(body.otpauthUrl).toContain(`issuer=Cleverom`);
    expect(body.otpauthUrl).toContain(encodeURIComponent(owner.email));
    expect(body.qrSvg).toMatch(/^<svg/);
    // Pending: logging in still needs only the password.
    expect((await passwordStep(owner.email)).statusCode).toBe(200);
  });

  it('confirms with a valid code, returns 10 distinct recovery codes once, and moves the session to AAL2 with a new token', async () => {
    const owner = await enterpriseOwner();
    const { recoveryCodes, token } = await enrolTotp(t, owner);
    expect(recoveryCodes).toHaveLength(10);
    expect(new Set(recoveryCodes).size).toBe(10);
    for (const code of recoveryCodes) expect(code.replace(/-/g, '')).toMatch(/^[A-Z2-9]{16}$/);
    expect(token).not.toBe(owner.token);
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(owner.token) })).statusCode).toBe(401);
    const me = await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(token) });
    expect(me.json().session.aal).toBe(2);
    const status = await t.app.inject({ method: 'GET', url: '/v1/me/mfa', ...asUser(token) });
    expect(status.json()).toMatchObject({ totp: { status: 'confirmed' }, recoveryCodesRemaining: 10 });
  });

  it('refuses a wrong confirmation code with 401 invalid_code', async () => {
    const owner = await enterpriseOwner();
    await t.app.inject({ method: 'POST', url: '/v1/me/mfa/totp', ...asUser(owner.token) });
    const confirm = await t.app.inject({ method: 'POST', url: '/v1/me/mfa/totp/confirm', ...asUser(owner.token), payload: { code: '000000' } });
    expect(confirm.statusCode).toBe(401);
    expect(confirm.json().code).toBe('invalid_code');
  });

  it('refuses a second enrolment while a factor is confirmed (409)', async () => {
    const owner = await enterpriseOwner();
    const { token } = await enrolTotp(t, owner);
    const again = await t.app.inject({ method: 'POST', url: '/v1/me/mfa/totp', ...asUser(token) });
    expect(again.statusCode).toBe(409);
  });

  /** Secrets at rest: the base32 secret must not be readable in the database file. */
  it('stores the secret sealed: the raw SQLite file does not contain it', async () => {
    const owner = await enterpriseOwner();
    const { secret, recoveryCodes } = await enrolTotp(t, owner);
    t.services.database.sqlite.pragma('wal_checkpoint(TRUNCATE)');
    const raw = readFileSync(t.databaseFile).toString('latin1');
    expect(raw).not.toContain(secret);
    expect(raw).not.toContain(recoveryCodes[0]);
    expect(raw).not.toContain(recoveryCodes[0]?.replace(/-/g, ''));
    expect(raw).toContain('v1.'); // the sealed form is there
  });
});

describe('login with a second factor', () => {
  it('asks for the code after the password, then issues an AAL2 session', async () => {
    const owner = await enterpriseOwner();
    const { secret } = await enrolTotp(t, owner);
    t.clock.advance(STEP);
    const first = await passwordStep(owner.email);
    expect(first.statusCode).toBe(401);
    expect(first.json()).toMatchObject({ code: 'mfa_required' });
    expect(typeof first.json().challengeId).toBe('string');
    expect(first.cookies.find((c) => c.name === 'cleverom_session')).toBeUndefined();
    const pending = pendingCookie(first);

    const second = await mfaStep(pending, { code: await totpCodeAt(secret, t.clock.now()) });
    expect(second.statusCode).toBe(200);
    expect(second.json().session.aal).toBe(2);
    const me = await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(sessionCookie(second)) });
    expect(me.json().session.aal).toBe(2);
  });

  it.each([
    [-1, 200],
    [0, 200],
    [1, 200],
    [-2, 401],
    [2, 401],
  ])('accepts a code from %i steps of drift: %i', async (drift, status) => {
    const owner = await enterpriseOwner();
    const { secret } = await enrolTotp(t, owner);
    t.clock.advance(5 * STEP);
    const pending = pendingCookie(await passwordStep(owner.email));
    const code = await totpCodeAt(secret, new Date(t.clock.now().getTime() + drift * STEP));
    expect((await mfaStep(pending, { code })).statusCode).toBe(status);
  });

  /** Attack: replay of an observed code within its validity window (RFC 6238 §5.2). */
  it('refuses a code for an already used time step', async () => {
    const owner = await enterpriseOwner();
    const { secret } = await enrolTotp(t, owner);
    t.clock.advance(STEP);
    const code = await totpCodeAt(secret, t.clock.now());
    expect((await mfaStep(pendingCookie(await passwordStep(owner.email)), { code })).statusCode).toBe(200);
    const replay = await mfaStep(pendingCookie(await passwordStep(owner.email)), { code });
    expect(replay.statusCode).toBe(401);
    expect(replay.json().code).toBe('invalid_code');
    // An earlier step is refused too.
    const earlier = await totpCodeAt(secret, new Date(t.clock.now().getTime() - STEP));
    expect((await mfaStep(pendingCookie(await passwordStep(owner.email)), { code: earlier })).statusCode).toBe(401);
  });

  it('the code used to confirm enrolment cannot log in', async () => {
    const owner = await enterpriseOwner();
    const start = await t.app.inject({ method: 'POST', url: '/v1/me/mfa/totp', ...asUser(owner.token) });
    const code = await totpCodeAt(start.json().secret, t.clock.now());
    await t.app.inject({ method: 'POST', url: '/v1/me/mfa/totp/confirm', ...asUser(owner.token), payload: { code } });
    expect((await mfaStep(pendingCookie(await passwordStep(owner.email)), { code })).statusCode).toBe(401);
  });

  /** Attack: two concurrent submissions of one code (race on the replay guard). */
  it('lets exactly one of two concurrent submissions of the same code win', async () => {
    const owner = await enterpriseOwner();
    const { secret } = await enrolTotp(t, owner);
    t.clock.advance(STEP);
    const a = pendingCookie(await passwordStep(owner.email));
    const b = pendingCookie(await passwordStep(owner.email));
    const code = await totpCodeAt(secret, t.clock.now());
    const results = await Promise.all([mfaStep(a, { code }), mfaStep(b, { code })]);
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 401]);
  });

  it('a challenge is single-use and expires after 5 minutes', async () => {
    const owner = await enterpriseOwner();
    const { secret } = await enrolTotp(t, owner);
    t.clock.advance(STEP);
    const pending = pendingCookie(await passwordStep(owner.email));
    expect((await mfaStep(pending, { code: await totpCodeAt(secret, t.clock.now()) })).statusCode).toBe(200);
    t.clock.advance(STEP);
    expect((await mfaStep(pending, { code: await totpCodeAt(secret, t.clock.now()) })).statusCode).toBe(401);

    const late = pendingCookie(await passwordStep(owner.email));
    t.clock.advance(5 * 60_000 + 1000);
    expect((await mfaStep(late, { code: await totpCodeAt(secret, t.clock.now()) })).statusCode).toBe(401);
  });

  /** Attack: brute force of the 6-digit code. */
  it('backs off 30 s after 5 wrong codes and kills the challenge after 10', async () => {
    const owner = await enterpriseOwner();
    const { secret } = await enrolTotp(t, owner);
    t.clock.advance(STEP);
    const pending = pendingCookie(await passwordStep(owner.email));
    for (let i = 0; i < 5; i += 1) expect((await mfaStep(pending, { code: '000000' })).statusCode).toBe(401);
    const locked = await mfaStep(pending, { code: await totpCodeAt(secret, t.clock.now()) });
    expect(locked.statusCode).toBe(423);
    expect(locked.json().retryAfter).toBe(30);
    t.clock.advance(30_000);
    for (let i = 0; i < 5; i += 1) await mfaStep(pending, { code: '000000' });
    t.clock.advance(30_000);
    // Ten failures: even the right code no longer opens this challenge.
    expect((await mfaStep(pending, { code: await totpCodeAt(secret, t.clock.now()) })).statusCode).toBe(401);
    // A new password step gives a new challenge that works.
    const fresh = pendingCookie(await passwordStep(owner.email));
    expect((await mfaStep(fresh, { code: await totpCodeAt(secret, t.clock.now()) })).statusCode).toBe(200);
  });

  /** Attack: racing wrong codes in parallel so no request sees the 5th failure. */
  it('locks after 5 wrong codes even when they arrive at once', async () => {
    const owner = await enterpriseOwner();
    const { secret } = await enrolTotp(t, owner);
    t.clock.advance(STEP);
    const pending = pendingCookie(await passwordStep(owner.email));
    await Promise.all(Array.from({ length: 5 }, () => mfaStep(pending, { code: '000000' })));
    const next = await mfaStep(pending, { code: await totpCodeAt(secret, t.clock.now()) });
    expect(next.statusCode).toBe(423);
  });

  /** Attack: using the pending cookie as a session to reach other routes. */
  it('the pending token is not a session', async () => {
    const owner = await enterpriseOwner();
    await enrolTotp(t, owner);
    const pending = pendingCookie(await passwordStep(owner.email));
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', cookies: { cleverom_session: pending } })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${pending}` } })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', cookies: { cleverom_mfa: pending } })).statusCode).toBe(401);
  });

  it('a wrong password never reaches the second step', async () => {
    const owner = await enterpriseOwner();
    await enrolTotp(t, owner);
    const response = await passwordStep(owner.email, 'not the right password');
    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe('invalid_credentials');
  });
});

describe('recovery codes', () => {
  it('each works once (any case, with or without dashes) and regenerating voids the old set', async () => {
    const owner = await enterpriseOwner();
    const { recoveryCodes, token } = await enrolTotp(t, owner);
    const [first, second] = recoveryCodes as [string, string];
    const ok = await mfaStep(pendingCookie(await passwordStep(owner.email)), { recoveryCode: first.toLowerCase().replace(/-/g, '') });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().session.aal).toBe(2);
    expect((await mfaStep(pendingCookie(await passwordStep(owner.email)), { recoveryCode: first })).statusCode).toBe(401);

    const regenerated = await t.app.inject({ method: 'POST', url: '/v1/me/mfa/recovery-codes', ...asUser(token) });
    expect(regenerated.statusCode).toBe(200);
    expect(regenerated.json().recoveryCodes).toHaveLength(10);
    expect((await mfaStep(pendingCookie(await passwordStep(owner.email)), { recoveryCode: second })).statusCode).toBe(401);
    const fresh = regenerated.json().recoveryCodes[0];
    expect((await mfaStep(pendingCookie(await passwordStep(owner.email)), { recoveryCode: fresh })).statusCode).toBe(200);
    expect(auditActions(t)).toContain('mfa.recovery_code.used');
    expect(auditActions(t)).toContain('mfa.recovery_codes.regenerated');
  });
});

describe('management', () => {
  it('disabling needs a fresh reauthentication and a current code', async () => {
    const owner = await enterpriseOwner();
    const { secret, token } = await enrolTotp(t, owner);
    t.clock.advance(11 * 60_000);
    const stale = await t.app.inject({ method: 'DELETE', url: '/v1/me/mfa/totp', ...asUser(token), payload: { code: await totpCodeAt(secret, t.clock.now()) } });
    expect(stale.statusCode).toBe(401);
    expect(stale.json().code).toBe('reauthentication_required');

    const reauth = await t.app.inject({ method: 'POST', url: '/v1/me/reauthenticate', ...asUser(token), payload: { password: GOOD_PASSWORD } });
    expect(reauth.statusCode).toBe(204);
    const fresh = sessionCookie(reauth);
    const wrong = await t.app.inject({ method: 'DELETE', url: '/v1/me/mfa/totp', ...asUser(fresh), payload: { code: '000000' } });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().code).toBe('invalid_code');
    t.clock.advance(STEP);
    const ok = await t.app.inject({ method: 'DELETE', url: '/v1/me/mfa/totp', ...asUser(fresh), payload: { code: await totpCodeAt(secret, t.clock.now()) } });
    expect(ok.statusCode).toBe(204);
    expect((await passwordStep(owner.email)).statusCode).toBe(200);
    expect(auditActions(t)).toContain('mfa.totp.disabled');
  });

  it('reauthenticates with a code (spent once)', async () => {
    const owner = await enterpriseOwner();
    const { secret, token } = await enrolTotp(t, owner);
    t.clock.advance(STEP);
    const code = await totpCodeAt(secret, t.clock.now());
    const first = await t.app.inject({ method: 'POST', url: '/v1/me/reauthenticate', ...asUser(token), payload: { code } });
    expect(first.statusCode).toBe(204);
    const replay = await t.app.inject({ method: 'POST', url: '/v1/me/reauthenticate', ...asUser(sessionCookie(first)), payload: { code } });
    expect(replay.statusCode).toBe(401);
    expect(replay.json().code).toBe('invalid_code');
  });

  it('regenerating recovery codes needs a fresh reauthentication', async () => {
    const owner = await enterpriseOwner();
    const { token } = await enrolTotp(t, owner);
    t.clock.advance(11 * 60_000);
    const response = await t.app.inject({ method: 'POST', url: '/v1/me/mfa/recovery-codes', ...asUser(token) });
    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe('reauthentication_required');
  });

  it("an org admin resets a member's factor after a lost device (audited); other orgs' admins cannot", async () => {
    const owner = await enterpriseOwner();
    const member = await addMember(t, owner, 'member');
    const { token: memberToken } = await enrolTotp(t, member);
    expect(memberToken).toBeTruthy();
    const reset = await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${owner.orgId}/members/${member.userId}/mfa`, ...asUser(owner.token) });
    expect(reset.statusCode).toBe(204);
    expect((await passwordStep(member.email)).statusCode).toBe(200);
    expect(auditActions(t)).toContain('mfa.totp.reset');

    // An admin cannot reset an owner's factor.
    const admin = await addMember(t, owner, 'admin');
    const { token: ownerToken } = await enrolTotp(t, owner);
    expect(ownerToken).toBeTruthy();
    const byAdmin = await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${owner.orgId}/members/${owner.userId}/mfa`, ...asUser(admin.token) });
    expect(byAdmin.statusCode).toBe(403);

    const stranger = await signup(t.app);
    const cross = await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${owner.orgId}/members/${member.userId}/mfa`, ...asUser(stranger.token) });
    expect(cross.statusCode).toBe(404);
  });
});

describe('plan gate', () => {
  it('refuses enrolment outside Enterprise with plan_required', async () => {
    const owner = await signup(t.app);
    const response = await t.app.inject({ method: 'POST', url: '/v1/me/mfa/totp', ...asUser(owner.token) });
    expect(response.statusCode).toBe(403);
    expect(response.json()).toMatchObject({ code: 'plan_required', feature: 'mfa_totp', requiredPlan: 'enterprise' });
  });

  it('after a downgrade an existing factor is still required at login (never silently removed)', async () => {
    const owner = await enterpriseOwner();
    const { secret } = await enrolTotp(t, owner);
    await t.services.orgs.setPlan(owner.orgId, 'free', { type: 'system', id: null });
    t.clock.advance(STEP);
    const first = await passwordStep(owner.email);
    expect(first.statusCode).toBe(401);
    expect(first.json().code).toBe('mfa_required');
    expect((await mfaStep(pendingCookie(first), { code: await totpCodeAt(secret, t.clock.now()) })).statusCode).toBe(200);
  });
});

describe('organization requires MFA', () => {
  it('limits a member without a factor to enrolment, and lifts it once enrolled', async () => {
    const owner = await enterpriseOwner();
    const member = await addMember(t, owner, 'member');
    const { token: ownerToken } = await enrolTotp(t, owner);
    const patch = await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${owner.orgId}`, ...asUser(ownerToken), payload: { settings: { requireMfa: true } } });
    expect(patch.statusCode).toBe(200);

    const token = sessionCookie(await passwordStep(member.email));
    const blocked = await t.app.inject({ method: 'GET', url: '/v1/me/sessions', ...asUser(token) });
    expect(blocked.statusCode).toBe(403);
    expect(blocked.json().reason).toBe('mfa_enrolment_required');
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(token) })).statusCode).toBe(200);

    const { token: aal2 } = await enrolTotp(t, { ...member, token });
    expect((await t.app.inject({ method: 'GET', url: '/v1/me/sessions', ...asUser(aal2) })).statusCode).toBe(200);
  });

  it('stops enforcing requireMfa for members without a factor after a downgrade', async () => {
    const owner = await enterpriseOwner();
    const member = await addMember(t, owner, 'member');
    await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${owner.orgId}`, ...asUser(owner.token), payload: { settings: { requireMfa: true } } });
    await t.services.orgs.setPlan(owner.orgId, 'free', { type: 'system', id: null });
    const token = sessionCookie(await passwordStep(member.email));
    expect((await t.app.inject({ method: 'GET', url: '/v1/me/sessions', ...asUser(token) })).statusCode).toBe(200);
  });

  it('records enrolment, confirmation, MFA success and failure in the audit chain', async () => {
    const owner = await enterpriseOwner();
    const { secret } = await enrolTotp(t, owner);
    t.clock.advance(STEP);
    await mfaStep(pendingCookie(await passwordStep(owner.email)), { code: '000000' });
    await mfaStep(pendingCookie(await passwordStep(owner.email)), { code: await totpCodeAt(secret, t.clock.now()) });
    const actions = auditActions(t);
    for (const action of ['mfa.totp.enrolment_started', 'mfa.totp.confirmed', 'auth.mfa.failed', 'auth.login.succeeded']) {
      expect(actions).toContain(action);
    }
    expect(t.services.audit.verify().ok).toBe(true);
  });
});

/**
 * Attack: grinding the second factor (issue 23 item 2). Someone who knows the
 * password starts login after login and tries TOTP codes; the 30 s backoff and
 * the 10-failure challenge only slow this down. NIST SP 800-63B-4 §3.2.2: at
 * most 100 consecutive failures per authenticator, then codes are refused
 * until a recovery code is used or an admin resets the factor; audited, and
 * the person is mailed.
 */
describe('the 100-failure ceiling', () => {
  /** A 6-digit code that is wrong at `now` and the steps either side. */
  async function wrongCode(secret: string): Promise<string> {
    const now = t.clock.now().getTime();
    const valid = new Set(await Promise.all([-STEP, 0, STEP].map((d) => totpCodeAt(secret, new Date(now + d)))));
    return ['000000', '111111', '222222'].find((c) => !valid.has(c)) ?? '333333';
  }

  /** `n` wrong codes over as many logins as the challenge cap needs, waiting out each 30 s backoff. */
  async function failCodes(email: string, secret: string, n: number): Promise<{ statusCode: number; body: string }[]> {
    const answers: { statusCode: number; body: string }[] = [];
    let pending = '';
    for (let i = 0; i < n; i += 1) {
      if (i % 10 === 0) pending = pendingCookie(await passwordStep(email));
      if (i % 5 === 0) t.clock.advance(31_000);
      const response = await mfaStep(pending, { code: await wrongCode(secret) });
      answers.push({ statusCode: response.statusCode, body: response.body });
    }
    return answers;
  }

  const codesOffMails = (to: string) => t.outbox().filter((m) => m.to === to && m.kind === 'mfa_codes_disabled');

  it('refuses even the right code after 100 consecutive wrong ones, audits it once and mails the person; a recovery code turns codes back on', async () => {
    const owner = await enterpriseOwner();
    const { secret, recoveryCodes, token } = await enrolTotp(t, owner);
    const answers = await failCodes(owner.email, secret, 100);
    expect(answers.every((a) => a.statusCode === 401 && JSON.parse(a.body).code === 'invalid_code')).toBe(true);
    expect(JSON.parse(answers.at(-1)?.body ?? '{}').detail).toContain('recovery code');
    expect(auditActions(t).filter((a) => a === 'mfa.totp.codes_disabled')).toHaveLength(1);
    const mails = codesOffMails(owner.email);
    expect(mails).toHaveLength(1);
    expect(mails[0]?.text).toContain('recovery code');

    // The right code, in a new time step, on a fresh challenge: refused.
    t.clock.advance(STEP);
    const pending = pendingCookie(await passwordStep(owner.email));
    const right = await mfaStep(pending, { code: await totpCodeAt(secret, t.clock.now()) });
    expect(right.statusCode).toBe(401);
    expect(right.json()).toMatchObject({ code: 'invalid_code' });
    expect(right.json().detail).toContain('recovery code');
    // Step-up by code is refused too (the factor is the same authenticator).
    const reauth = await t.app.inject({ method: 'POST', url: '/v1/me/reauthenticate', ...asUser(token), payload: { code: await totpCodeAt(secret, t.clock.now()) } });
    expect(reauth.statusCode).toBe(401);
    expect(reauth.json().code).toBe('invalid_code');

    // A recovery code still signs in, and turns codes back on.
    const recovered = await mfaStep(pending, { recoveryCode: recoveryCodes[0] ?? '' });
    expect(recovered.statusCode).toBe(200);
    expect(auditActions(t)).toContain('mfa.totp.codes_reenabled');
    t.clock.advance(STEP);
    const again = await mfaStep(pendingCookie(await passwordStep(owner.email)), { code: await totpCodeAt(secret, t.clock.now()) });
    expect(again.statusCode).toBe(200);
    expect(codesOffMails(owner.email)).toHaveLength(1);
  });

  it('counts consecutive failures only: a right code at 99 resets the counter', async () => {
    const owner = await enterpriseOwner();
    const { secret } = await enrolTotp(t, owner);
    await failCodes(owner.email, secret, 99);
    t.clock.advance(STEP);
    expect((await mfaStep(pendingCookie(await passwordStep(owner.email)), { code: await totpCodeAt(secret, t.clock.now()) })).statusCode).toBe(200);
    await failCodes(owner.email, secret, 5);
    t.clock.advance(STEP);
    expect((await mfaStep(pendingCookie(await passwordStep(owner.email)), { code: await totpCodeAt(secret, t.clock.now()) })).statusCode).toBe(200);
    expect(auditActions(t)).not.toContain('mfa.totp.codes_disabled');
  });

  it("lets an org admin's reset (DELETE /v1/orgs/:orgId/members/:userId/mfa) end the lock-out", async () => {
    const owner = await enterpriseOwner();
    const member = await addMember(t, owner, 'member');
    const { secret } = await enrolTotp(t, member);
    await failCodes(member.email, secret, 100);
    expect(codesOffMails(member.email)).toHaveLength(1);
    // The owner confirms it is them (the reset is a fresh-session action), then resets.
    const confirm = await t.app.inject({ method: 'POST', url: '/v1/me/reauthenticate', ...asUser(owner.token), payload: { password: GOOD_PASSWORD } });
    expect(confirm.statusCode).toBe(204);
    const reset = await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${owner.orgId}/members/${member.userId}/mfa`, ...asUser(sessionCookie(confirm)) });
    expect(reset.statusCode).toBe(204);
    expect(auditActions(t)).toContain('mfa.totp.reset');
    // The member signs in with the password again and can enrol a new device.
    const login = await passwordStep(member.email);
    expect(login.statusCode).toBe(200);
    const fresh = await enrolTotp(t, { ...member, token: sessionCookie(login) });
    t.clock.advance(STEP);
    expect((await mfaStep(pendingCookie(await passwordStep(member.email)), { code: await totpCodeAt(fresh.secret, t.clock.now()) })).statusCode).toBe(200);
  });
});
