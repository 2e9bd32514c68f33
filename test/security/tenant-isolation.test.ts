/**
 * Attack: cross-tenant access (broken object-level authorization, OWASP API1).
 * An owner, admin or member of organization A substitutes organization B's id
 * — or the id of one of B's users — into the org-scoped routes to read or
 * change B. Every such request must answer `404 not_found`, exactly as for an
 * organization that does not exist (never `403`, which would confirm that B
 * exists), and B must be left untouched: no rename, no role change, no removed
 * member, no invitation, no audit event about B.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addMember, asUser, buildTestApp, signup, uniqueEmail, type SignedUp, type TestApp } from '../helpers/app.js';

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

interface World {
  ownerA: SignedUp;
  adminA: SignedUp;
  memberA: SignedUp;
  ownerB: SignedUp;
  adminB: SignedUp;
  memberB: SignedUp;
}

async function twoOrgs(): Promise<World> {
  const ownerA = await signup(t.app, { orgName: 'Org A' });
  const ownerB = await signup(t.app, { orgName: 'Org B' });
  return {
    ownerA,
    adminA: await addMember(t, ownerA, 'admin'),
    memberA: await addMember(t, ownerA, 'member'),
    ownerB,
    adminB: await addMember(t, ownerB, 'admin'),
    memberB: await addMember(t, ownerB, 'member'),
  };
}

/** What B looks like from the inside, plus everything stored about it. */
async function snapshotOf(world: World): Promise<unknown> {
  const db = t.services.database.sqlite;
  const org = await t.app.inject({ method: 'GET', url: `/v1/orgs/${world.ownerB.orgId}`, ...asUser(world.ownerB.token) });
  const members = await t.app.inject({ method: 'GET', url: `/v1/orgs/${world.ownerB.orgId}/members`, ...asUser(world.ownerB.token) });
  expect(org.statusCode).toBe(200);
  expect(members.statusCode).toBe(200);
  return {
    org: org.json(),
    members: members.json(),
    users: db.prepare('SELECT id, email, role, org_id, updated_at FROM users WHERE org_id = ? ORDER BY id').all(world.ownerB.orgId),
    invitations: db.prepare('SELECT id, email, role FROM invitations WHERE org_id = ? ORDER BY id').all(world.ownerB.orgId),
    sessions: db.prepare('SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.org_id = ? ORDER BY s.id').all(world.ownerB.orgId),
    audit: db.prepare('SELECT seq, action FROM audit_events WHERE org_id = ? ORDER BY seq').all(world.ownerB.orgId),
    // Nothing at all is recorded for a refused cross-tenant attempt (not even under A).
    auditTotal: db.prepare('SELECT COUNT(*) AS n FROM audit_events').get(),
  };
}

type Route = [label: string, method: 'GET' | 'PATCH' | 'DELETE' | 'POST', path: (orgId: string, userId: string) => string, payload?: object];

const ORG_ROUTES: Route[] = [
  ['GET the org', 'GET', (o) => `/v1/orgs/${o}`],
  ['PATCH the org', 'PATCH', (o) => `/v1/orgs/${o}`, { name: 'Owned by A' }],
  ['PATCH the org settings', 'PATCH', (o) => `/v1/orgs/${o}`, { settings: { requireMfa: false } }],
  ['GET the members', 'GET', (o) => `/v1/orgs/${o}/members`],
  ['PATCH a member role', 'PATCH', (o, u) => `/v1/orgs/${o}/members/${u}`, { role: 'owner' }],
  ['PATCH a member without a role (read)', 'PATCH', (o, u) => `/v1/orgs/${o}/members/${u}`, {}],
  ['DELETE a member', 'DELETE', (o, u) => `/v1/orgs/${o}/members/${u}`],
  ['POST an invitation', 'POST', (o) => `/v1/orgs/${o}/invitations`, { email: 'spy@example.com', role: 'owner' }],
];

const ATTACKERS = ['ownerA', 'adminA', 'memberA'] as const;

describe('tenant isolation: another organization does not exist for you', () => {
  for (const attacker of ATTACKERS) {
    it.each(ORG_ROUTES)(`${attacker} → %s of org B → 404 not_found, identical to an unknown org, B unchanged`, async (_label, method, path, payload) => {
      const world = await twoOrgs();
      const before = await snapshotOf(world);
      const mailsBefore = t.outbox().length;
      const who = world[attacker];

      const response = await t.app.inject({ method, url: path(world.ownerB.orgId, world.memberB.userId), ...asUser(who.token), ...(payload ? { payload } : {}) });
      expect(response.statusCode).toBe(404);
      expect(response.json().code).toBe('not_found');
      // Nothing distinguishes B from an organization that does not exist.
      const unknown = await t.app.inject({ method, url: path('no-such-org', 'no-such-user'), ...asUser(who.token), ...(payload ? { payload } : {}) });
      expect(unknown.statusCode).toBe(404);
      expect(response.body).toBe(unknown.body);
      expect(response.body).not.toContain(world.ownerB.orgId);
      expect(response.body).not.toContain('Org B');

      expect(await snapshotOf(world)).toEqual(before);
      expect(t.outbox()).toHaveLength(mailsBefore);
      // The victim's session still works.
      expect((await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(world.memberB.token) })).statusCode).toBe(200);
    });
  }

  it('answers 404 on the bearer path too (no Origin, Authorization header)', async () => {
    const world = await twoOrgs();
    const before = await snapshotOf(world);
    const response = await t.app.inject({
      method: 'PATCH',
      url: `/v1/orgs/${world.ownerB.orgId}`,
      headers: { authorization: `Bearer ${world.ownerA.token}` },
      payload: { name: 'Owned by A' },
    });
    expect(response.statusCode).toBe(404);
    expect(await snapshotOf(world)).toEqual(before);
  });
});

describe("tenant isolation: another organization's users under your own org path", () => {
  it.each([
    ["PATCH B's owner to member", 'PATCH', 'ownerB', { role: 'member' }],
    ["PATCH B's member to owner", 'PATCH', 'memberB', { role: 'owner' }],
    ["PATCH B's admin without a role (read)", 'PATCH', 'adminB', {}],
    ["DELETE B's member", 'DELETE', 'memberB', undefined],
    ["DELETE B's owner", 'DELETE', 'ownerB', undefined],
  ] as const)('ownerA → %s via /v1/orgs/A/members/:userId → 404 not_found, B unchanged', async (_label, method, victim, payload) => {
    const world = await twoOrgs();
    const before = await snapshotOf(world);
    const target = world[victim];
    const response = await t.app.inject({
      method,
      url: `/v1/orgs/${world.ownerA.orgId}/members/${target.userId}`,
      ...asUser(world.ownerA.token),
      ...(payload ? { payload } : {}),
    });
    expect(response.statusCode).toBe(404);
    expect(response.json().code).toBe('not_found');
    const unknown = await t.app.inject({
      method,
      url: `/v1/orgs/${world.ownerA.orgId}/members/no-such-user`,
      ...asUser(world.ownerA.token),
      ...(payload ? { payload } : {}),
    });
    expect(response.body).toBe(unknown.body);
    expect(response.body).not.toContain(target.email);
    expect(await snapshotOf(world)).toEqual(before);
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(target.token) })).json().user).toMatchObject({
      orgId: world.ownerB.orgId,
      role: victim === 'ownerB' ? 'owner' : victim === 'adminB' ? 'admin' : 'member',
    });
  });

  it("does not list B's users among A's members", async () => {
    const world = await twoOrgs();
    const response = await t.app.inject({ method: 'GET', url: `/v1/orgs/${world.ownerA.orgId}/members`, ...asUser(world.memberA.token) });
    expect(response.statusCode).toBe(200);
    const ids = response.json<{ members: { id: string }[] }>().members.map((m) => m.id);
    expect(ids.sort()).toEqual([world.ownerA.userId, world.adminA.userId, world.memberA.userId].sort());
    for (const other of [world.ownerB, world.adminB, world.memberB]) expect(response.body).not.toContain(other.email);
  });

  it("cannot pull B's user into A by inviting their email: acceptance is refused and the account stays in B", async () => {
    const world = await twoOrgs();
    const invite = await t.app.inject({
      method: 'POST',
      url: `/v1/orgs/${world.ownerA.orgId}/invitations`,
      ...asUser(world.ownerA.token),
      payload: { email: world.memberB.email, role: 'owner' },
    });
    // Same answer as for any address (no enumeration of other tenants' users).
    expect(invite.statusCode).toBe(201);
    const fresh = await t.app.inject({
      method: 'POST',
      url: `/v1/orgs/${world.ownerA.orgId}/invitations`,
      ...asUser(world.ownerA.token),
      payload: { email: uniqueEmail('nobody'), role: 'owner' },
    });
    expect(fresh.statusCode).toBe(201);
    expect(Object.keys(fresh.json())).toEqual(Object.keys(invite.json()));

    const mail = t.outbox().filter((m) => m.to === world.memberB.email && m.kind === 'invitation').at(-1);
    const token = /Token: (\S+)/.exec(mail?.text ?? '')?.[1] ?? '';
    const accepted = await t.app.inject({
      method: 'POST',
      url: '/v1/invitations/accept',
      payload: { token, name: 'Taken Over', password: 'an entirely new password for b', ageConfirmed: true },
    });
    expect(accepted.statusCode).toBe(409);
    const meB = await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(world.memberB.token) });
    expect(meB.json().user).toMatchObject({ orgId: world.ownerB.orgId, role: 'member', name: 'Member member' });
    const stolen = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: world.memberB.email, password: 'an entirely new password for b' } });
    expect(stolen.statusCode).toBe(401);
  });
});
