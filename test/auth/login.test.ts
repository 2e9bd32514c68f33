import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AppError } from '../../src/platform/errors.js';
import { GOOD_PASSWORD, buildTestApp, sessionCookie, signup, uniqueEmail, type TestApp } from '../helpers/app.js';

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

const loginAs = (email: string, password: string) =>
  t.app.inject({ method: 'POST', url: '/v1/login', payload: { email, password }, headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' } });

describe('POST /v1/login', () => {
  it('logs in with the right password and issues a fresh session token each time', async () => {
    const owner = await signup(t.app);
    const first = await loginAs(owner.email, GOOD_PASSWORD);
    expect(first.statusCode).toBe(200);
    const body = first.json();
    expect(body.user).toMatchObject({ id: owner.userId, email: owner.email });
    expect(body.user.passwordHash).toBeUndefined();
    expect(body.session).toMatchObject({ aal: 1, authMethod: 'password' });
    const second = await loginAs(owner.email, GOOD_PASSWORD);
    expect(sessionCookie(second)).not.toBe(sessionCookie(first));
    expect(sessionCookie(first)).not.toBe(owner.token);
    expect(sessionCookie(first).length).toBeGreaterThanOrEqual(43); // 256 bits in base64url
  });

  it('accepts the email in any case and with surrounding spaces', async () => {
    const owner = await signup(t.app);
    const response = await loginAs(`  ${owner.email.toUpperCase()} `.trim(), GOOD_PASSWORD);
    expect(response.statusCode).toBe(200);
  });

  it('stores only the SHA-256 of the session token', async () => {
    const owner = await signup(t.app);
    const rows = t.services.database.sqlite.prepare('SELECT token_hash FROM sessions').all() as { token_hash: string }[];
    expect(rows.map((r) => r.token_hash)).not.toContain(owner.token);
    expect(rows.every((r) => /^[0-9a-f]{64}$/.test(r.token_hash))).toBe(true);
  });

  it('sets HttpOnly, SameSite=Lax, Path=/ on the session cookie (no Secure over http)', async () => {
    const owner = await signup(t.app);
    const response = await loginAs(owner.email, GOOD_PASSWORD);
    const cookie = response.cookies.find((c) => c.name === 'cleverom_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    expect(cookie?.secure).toBeUndefined();
  });

  it.each([
    ['missing password', { email: 'a@example.com' }],
    ['email not a string', { email: 42, password: 'x' }],
    ['not an email', { email: 'not-an-email', password: 'x' }],
    ['extra field', { email: 'a@example.com', password: 'x', admin: true }],
    ['huge password', { email: 'a@example.com', password: 'x'.repeat(5000) }],
  ])('refuses a malformed body (%s) with 400 validation_failed', async (_label, payload) => {
    const response = await t.app.inject({ method: 'POST', url: '/v1/login', payload });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.json().code).toBe('validation_failed');
    expect(Array.isArray(response.json().errors)).toBe(true);
  });
});

/**
 * Attack: account enumeration. An attacker compares the answers for a known
 * and an unknown email; they must match in status, body and argon2 work.
 */
describe('enumeration resistance', () => {
  it('answers an unknown email exactly like a wrong password, after the same argon2 verification', async () => {
    const owner = await signup(t.app);
    const verify = vi.spyOn(t.services.hasher, 'verify');
    const wrong = await loginAs(owner.email, 'this is not the password');
    const unknown = await loginAs(uniqueEmail('nobody'), 'this is not the password');
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    expect(unknown.body).toBe(wrong.body);
    expect(wrong.json().code).toBe('invalid_credentials');
    // Both ran one argon2 verification: the known account against its hash, the unknown one against the dummy hash.
    expect(verify).toHaveBeenCalledTimes(2);
    const results = await Promise.all(verify.mock.results.map((r) => r.value as Promise<{ ok: boolean }>));
    expect(results.map((r) => r.ok)).toEqual([false, false]);
    verify.mockRestore();
  });
});

/**
 * Attack: online password guessing. After 5 consecutive failures the account
 * is locked with a doubling backoff, identically for unknown emails.
 */
describe('per-account throttling', () => {
  async function failTimes(email: string, n: number): Promise<number[]> {
    const statuses: number[] = [];
    for (let i = 0; i < n; i += 1) statuses.push((await loginAs(email, 'wrong password, sorry')).statusCode);
    return statuses;
  }

  it.each([
    ['an existing account', true],
    ['an unknown email', false],
  ])('locks %s after 5 failures with a backoff that doubles from 1 s', async (_label, exists) => {
    const email = exists ? (await signup(t.app)).email : uniqueEmail('ghost');
    expect(await failTimes(email, 5)).toEqual([401, 401, 401, 401, 401]);

    const locked = await loginAs(email, 'wrong password, sorry');
    expect(locked.statusCode).toBe(423);
    expect(locked.json()).toMatchObject({ code: 'account_locked', retryAfter: 1 });
    expect(locked.headers['retry-after']).toBe('1');

    t.clock.advance(1000);
    expect((await loginAs(email, 'wrong password, sorry')).statusCode).toBe(401);
    const again = await loginAs(email, 'wrong password, sorry');
    expect(again.statusCode).toBe(423);
    expect(again.json().retryAfter).toBe(2);
  });

  it('refuses even the right password while locked, and resets the counter on success', async () => {
    const owner = await signup(t.app);
    await failTimes(owner.email, 5);
    expect((await loginAs(owner.email, GOOD_PASSWORD)).statusCode).toBe(423);
    t.clock.advance(1000);
    expect((await loginAs(owner.email, GOOD_PASSWORD)).statusCode).toBe(200);
    // The counter starts again: four more failures do not lock.
    expect(await failTimes(owner.email, 4)).toEqual([401, 401, 401, 401]);
    expect((await loginAs(owner.email, GOOD_PASSWORD)).statusCode).toBe(200);
  });

  it('caps the backoff at 15 minutes', async () => {
    const email = uniqueEmail('ghost');
    await failTimes(email, 5);
    for (let i = 0; i < 12; i += 1) {
      t.clock.advance(16 * 60 * 1000);
      await loginAs(email, 'wrong password, sorry');
    }
    const locked = await loginAs(email, 'wrong password, sorry');
    expect(locked.json().retryAfter).toBe(900);
  });

  it('disables password login after 100 consecutive failures until a password reset (NIST ceiling)', async () => {
    const owner = await signup(t.app);
    for (let i = 0; i < 100; i += 1) {
      t.clock.advance(16 * 60 * 1000);
      await loginAs(owner.email, 'wrong password, sorry');
    }
    t.clock.advance(24 * 3600 * 1000);
    const disabled = await loginAs(owner.email, GOOD_PASSWORD);
    expect(disabled.statusCode).toBe(423);
    expect(disabled.json().retryAfter).toBe(900);

    await t.app.inject({ method: 'POST', url: '/v1/password-reset', payload: { email: owner.email } });
    const token = /Token: (\S+)/.exec(t.outbox().at(-1)?.text ?? '')?.[1];
    const newPassword = 'a different long passphrase';
    expect((await t.app.inject({ method: 'POST', url: '/v1/password-reset/confirm', payload: { token, newPassword } })).statusCode).toBe(204);
    expect((await loginAs(owner.email, newPassword)).statusCode).toBe(200);
  });

  it('records failures and lock refusals in the audit log without the password', async () => {
    const owner = await signup(t.app);
    await failTimes(owner.email, 6);
    const rows = t.services.database.sqlite.prepare("SELECT action, data FROM audit_events WHERE action LIKE 'auth.login.%'").all() as { action: string; data: string }[];
    expect(rows.filter((r) => r.action === 'auth.login.failed')).toHaveLength(5);
    expect(rows.filter((r) => r.action === 'auth.login.locked')).toHaveLength(1);
    const everything = JSON.stringify(t.services.database.sqlite.prepare('SELECT * FROM audit_events, audit_pii').all());
    expect(everything).not.toContain('wrong password');
  });
});

/**
 * Attack: parallel guessing (issue 23 item 1). An attacker sends many wrong
 * passwords for one account at once, hoping every request reads the counter
 * before any failure is written. Each attempt is reserved in the write that
 * reads the counter, before argon2 runs, so at most 5 are ever checked; the
 * rest are refused while locked without a hash, identically for unknown
 * accounts. argon2 runs on the thread pool, so the requests really overlap.
 */
describe('parallel guessing', () => {
  it.each([
    ['an existing account', true],
    ['an unknown email', false],
  ])('checks at most 5 of 12 parallel wrong passwords for %s; the rest get 423 without argon2', async (_label, exists) => {
    const email = exists ? (await signup(t.app)).email : uniqueEmail('ghost');
    const verify = vi.spyOn(t.services.hasher, 'verify');
    const responses = await Promise.all(Array.from({ length: 12 }, (_, i) => loginAs(email, `wrong password number ${i}`)));
    const statuses = responses.map((r) => r.statusCode).sort();
    expect(statuses).toEqual([...Array(5).fill(401), ...Array(7).fill(423)]);
    expect(verify).toHaveBeenCalledTimes(5);
    const refused = responses.filter((r) => r.statusCode === 423);
    expect(new Set(refused.map((r) => r.body)).size).toBe(1);
    expect(refused[0]?.json()).toMatchObject({ code: 'account_locked', retryAfter: 1 });
    verify.mockRestore();
    const rows = t.services.database.sqlite.prepare("SELECT action FROM audit_events WHERE action IN ('auth.login.failed', 'auth.login.locked')").all() as { action: string }[];
    expect(rows.filter((r) => r.action === 'auth.login.failed')).toHaveLength(5);
    expect(rows.filter((r) => r.action === 'auth.login.locked')).toHaveLength(7);
  });

  it('lets the right password in once the lock has passed, and clears the counter', async () => {
    const owner = await signup(t.app);
    await Promise.all(Array.from({ length: 12 }, () => loginAs(owner.email, 'wrong password, sorry')));
    expect((await loginAs(owner.email, GOOD_PASSWORD)).statusCode).toBe(423);
    t.clock.advance(1000);
    expect((await loginAs(owner.email, GOOD_PASSWORD)).statusCode).toBe(200);
    // Cleared: four wrong ones in parallel are all checked, none locked.
    const after = await Promise.all(Array.from({ length: 4 }, () => loginAs(owner.email, 'wrong password, sorry')));
    expect(after.map((r) => r.statusCode)).toEqual([401, 401, 401, 401]);
  });

  it('counts the right password in a parallel burst as a success, not a failure', async () => {
    const owner = await signup(t.app);
    const responses = await Promise.all([
      loginAs(owner.email, 'wrong password, sorry'),
      loginAs(owner.email, 'wrong password, sorry'),
      loginAs(owner.email, GOOD_PASSWORD),
    ]);
    expect(responses.map((r) => r.statusCode).sort()).toEqual([200, 401, 401]);
  });

  it('gives the reservation back when the argon2 queue refuses the check (429 is not a failure)', async () => {
    const owner = await signup(t.app);
    const busy = vi.spyOn(t.services.hasher, 'verify').mockRejectedValue(new AppError('rate_limited'));
    for (let i = 0; i < 8; i += 1) expect((await loginAs(owner.email, 'wrong password, sorry')).statusCode).toBe(429);
    busy.mockRestore();
    const row = t.services.database.sqlite.prepare('SELECT failures, locked_until FROM login_throttle').get() as { failures: number; locked_until: number | null } | undefined;
    expect(row).toMatchObject({ failures: 0, locked_until: null });
    expect((await loginAs(owner.email, GOOD_PASSWORD)).statusCode).toBe(200);
  });
});
