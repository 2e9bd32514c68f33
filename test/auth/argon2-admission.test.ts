/**
 * Admission control of argon2 work (issue 9): a bounded number of hashes run
 * at once, a bounded number wait, and the next one is refused with 429 and
 * Retry-After instead of queueing without bound. No timing is asserted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PasswordHasher } from '../../src/auth/password/hasher.js';
import { ARGON2_FLOOR } from '../../src/config/load-config.js';
import { AppError } from '../../src/platform/errors.js';
import { GOOD_PASSWORD, buildTestApp, signup, type TestApp } from '../helpers/app.js';

describe('PasswordHasher admission', () => {
  it('runs up to maxConcurrent, queues up to maxQueued, refuses the next with rate_limited', async () => {
    const hasher = new PasswordHasher(ARGON2_FLOOR, { maxConcurrent: 1, maxQueued: 1 });
    await hasher.warmUp();
    const stored = await hasher.hash(GOOD_PASSWORD);
    const first = hasher.verify(stored, GOOD_PASSWORD); // runs
    const second = hasher.verify(stored, GOOD_PASSWORD); // waits
    expect(hasher.queued).toBe(1);
    const third = hasher.verify(stored, GOOD_PASSWORD); // refused
    const refusal = await third.then(
      () => null,
      (error: unknown) => error,
    );
    expect(refusal).toBeInstanceOf(AppError);
    expect((refusal as AppError).code).toBe('rate_limited');
    expect((refusal as AppError).headers['retry-after']).toBe('1');
    expect(await first).toEqual({ ok: true, needsRehash: false });
    expect(await second).toEqual({ ok: true, needsRehash: false });
    // Slots were handed over and released: the hasher takes work again.
    expect(hasher.queued).toBe(0);
    expect((await hasher.verify(stored, 'wrong password entirely')).ok).toBe(false);
  });
});

describe('POST /v1/login under a burst', () => {
  let t: TestApp;
  afterEach(async () => {
    await t.close();
  });

  it('answers 429 with Retry-After when the argon2 queue is full, and logs in the admitted ones', async () => {
    t = await buildTestApp({ env: { ARGON2_MAX_CONCURRENT: '1', ARGON2_MAX_QUEUE: '0' } });
    const owner = await signup(t.app);
    const attempt = () => t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: GOOD_PASSWORD } });
    const [a, b] = await Promise.all([attempt(), attempt()]);
    const statuses = [a.statusCode, b.statusCode].sort();
    expect(statuses).toEqual([200, 429]);
    const refused = a.statusCode === 429 ? a : b;
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.json()).toMatchObject({ code: 'rate_limited', retryAfter: 1 });
    // Nothing was checked for the refused one: no failure counted against the account.
    expect((await attempt()).statusCode).toBe(200);
  });
});
