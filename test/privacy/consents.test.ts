/**
 * Consents (GDPR Art. 7 and 21, CCPA opt-out of sale/sharing, VCDPA opt-out
 * of targeted advertising/sale): `GET/PUT /v1/me/consents` for `marketing`
 * and `saleOrShare`, both false until the person opts in; each change is a
 * history row with its time and source, exported and erased with the person.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addMember, asUser, buildTestApp, signup, type SignedUp, type TestApp } from '../helpers/app.js';
import { auditEvents } from './helpers.js';

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

const get = (user: SignedUp) => t.app.inject({ method: 'GET', url: '/v1/me/consents', ...asUser(user.token) });
const put = (user: SignedUp, payload: Record<string, unknown>) => t.app.inject({ method: 'PUT', url: '/v1/me/consents', ...asUser(user.token), payload });
const history = (userId: string): { purpose: string; granted: number; source: string; at: number }[] =>
  t.services.database.sqlite.prepare('SELECT purpose, granted, source, at FROM consent_history WHERE user_id = ? ORDER BY at, id').all(userId) as never;

describe('consents', () => {
  it('default to false, and each change is stored with its time and source', async () => {
    const owner = await signup(t.app);
    const initial = await get(owner);
    expect(initial.statusCode).toBe(200);
    expect(initial.json()).toEqual({ marketing: false, saleOrShare: false, updatedAt: null });

    const given = await put(owner, { marketing: true, saleOrShare: false });
    expect(given.statusCode, given.body).toBe(200);
    expect(given.json()).toEqual({ marketing: true, saleOrShare: false, updatedAt: t.clock.now().toISOString() });
    const firstAt = t.clock.now().getTime();
    t.clock.advance(60_000);
    // Withdrawing is as easy as giving (Art. 7(3)); an unchanged value adds no row.
    expect((await put(owner, { marketing: false, saleOrShare: false })).json()).toMatchObject({ marketing: false, saleOrShare: false });
    t.clock.advance(60_000);
    expect((await put(owner, { saleOrShare: true })).json()).toMatchObject({ marketing: false, saleOrShare: true });
    expect((await get(owner)).json()).toEqual({ marketing: false, saleOrShare: true, updatedAt: t.clock.now().toISOString() });

    expect(history(owner.userId)).toEqual([
      { purpose: 'marketing', granted: 1, source: 'api', at: firstAt },
      { purpose: 'marketing', granted: 0, source: 'api', at: firstAt + 60_000 },
      { purpose: 'saleOrShare', granted: 1, source: 'api', at: firstAt + 120_000 },
    ]);
    const changes = auditEvents(t, 'privacy.consents_changed');
    expect(changes.map((e) => e.data.changed)).toEqual([['marketing'], ['marketing'], ['saleOrShare']]);
    expect(changes.every((e) => e.actor_id === owner.userId && e.subject_id === owner.userId && e.data.source === 'api')).toBe(true);
    expect(auditEvents(t, 'privacy.consents_viewed')).toHaveLength(2);
  });

  it('are per person', async () => {
    const owner = await signup(t.app);
    const member = await addMember(t, owner, 'member');
    await put(owner, { marketing: true });
    expect((await get(member)).json()).toMatchObject({ marketing: false, saleOrShare: false });
  });

  it.each([
    ['an empty body', {}],
    ['a string value', { marketing: 'yes' }],
    ['an unknown purpose', { profiling: true }],
  ])('reject %s with 400 validation_failed', async (_label, payload) => {
    const owner = await signup(t.app);
    const response = await put(owner, payload);
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('validation_failed');
  });

  it('need a session', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/v1/me/consents' })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'PUT', url: '/v1/me/consents', payload: { marketing: true } })).statusCode).toBe(401);
  });
});
