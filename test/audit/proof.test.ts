/**
 * Attack (issue 23, item 11): a customer must be able to tell whether the
 * audit history Cleverom shows them was rewritten, truncated or forged —
 * including by someone at Cleverom with write access to the database —
 * without trusting Cleverom's database or code. They hold only the public
 * checkpoint key; the proof of a stretch of the chain gives them their own
 * events in full and every other organization's as a bare digest.
 *
 * `customerVerifies` below is the algorithm of docs/api.md ("Verifying an
 * exported slice"), written with node's crypto and the RFC 8785 library
 * only: no code of the service.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import canonicalize from 'canonicalize';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { asUser, buildTestApp, login, signup, type SignedUp, type TestApp } from '../helpers/app.js';
import { makeEnterprise } from '../helpers/totp.js';

interface Jwk { kty: string; crv: string; x: string; kid: string }
interface ProofEvent {
  seq: number; id: string; at: string; action: string; actorType: string; actorId: string | null; orgId: string | null;
  subjectId: string | null; data: unknown; piiCommitment: string | null; prevHash: string; hash: string; format: string;
}
interface Checkpoint { version: number; seq: number; hash: string; at: string; keyId: string; signature: string }
interface Proof {
  fromSeq: number; toSeq: number; prevHash: string; checkpoint: Checkpoint; publicKey: Jwk;
  chain: ({ seq: number; digest: string } | { seq: number; event: ProofEvent })[];
}

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
const jcs = (value: unknown): string => {
  const text = canonicalize(value);
  if (text === undefined) throw new Error('not canonicalisable');
  return text;
};

/** The customer's verification of a proof for their organization `orgId`, against the key they pinned. */
function customerVerifies(proof: Proof, pinned: Jwk, orgId: string): { ok: true } | { ok: false; reason: string } {
  const { signature, ...signed } = proof.checkpoint;
  if (proof.checkpoint.keyId !== pinned.kid || proof.publicKey.x !== pinned.x) return { ok: false, reason: 'not the pinned key' };
  const publicKey = createPublicKey({ key: { kty: pinned.kty, crv: pinned.crv, x: pinned.x }, format: 'jwk' });
  if (!verify(null, Buffer.from(jcs(signed), 'utf8'), publicKey, Buffer.from(signature, 'base64url'))) return { ok: false, reason: 'signature' };
  if (proof.checkpoint.seq !== proof.toSeq) return { ok: false, reason: 'checkpoint is not at toSeq' };
  let prev = proof.prevHash;
  let seq = proof.fromSeq;
  for (const item of proof.chain) {
    if (item.seq !== seq) return { ok: false, reason: `item ${seq} missing` };
    let digest: string;
    if ('event' in item) {
      const e = item.event;
      if (e.seq !== seq || e.orgId !== orgId || e.format !== 'keyed' || e.prevHash !== prev) return { ok: false, reason: `event ${seq} is out of place` };
      digest = sha256(jcs({ seq: e.seq, id: e.id, at: e.at, action: e.action, actorType: e.actorType, actorId: e.actorId, orgId: e.orgId, subjectId: e.subjectId, data: jcs(e.data), piiCommitment: e.piiCommitment }));
    } else {
      digest = item.digest;
    }
    const hash = sha256(digest + prev);
    if ('event' in item && item.event.hash !== hash) return { ok: false, reason: `event ${seq} hash` };
    prev = hash;
    seq += 1;
  }
  if (seq !== proof.toSeq + 1) return { ok: false, reason: 'chain ends early' };
  if (prev !== proof.checkpoint.hash) return { ok: false, reason: 'the chain does not end at the signed hash' };
  return { ok: true };
}

let t: TestApp;
let a: SignedUp;
let b: SignedUp;
beforeEach(async () => {
  t = await buildTestApp();
  a = await signup(t.app, { orgName: 'Alpha Oy' });
  b = await signup(t.app, { orgName: 'Beta Secret Oy' });
  await makeEnterprise(t, a.orgId);
  await makeEnterprise(t, b.orgId);
  // Interleave the two organizations' events.
  for (let i = 0; i < 3; i += 1) {
    await login(t.app, a.email);
    await login(t.app, b.email);
  }
});
afterEach(async () => {
  await t.close();
});

async function pinnedKey(): Promise<Jwk> {
  // Public, no authentication: the customer fetches it once (or from our docs) and pins it.
  const response = await t.app.inject({ method: 'GET', url: '/v1/audit/checkpoint-keys' });
  expect(response.statusCode).toBe(200);
  const [first] = response.json<{ keys: Jwk[] }>().keys;
  if (!first) throw new Error('no checkpoint key');
  return first;
}

async function proofFor(who: SignedUp, query = ''): Promise<{ statusCode: number; proof: Proof }> {
  const response = await t.app.inject({ method: 'GET', url: `/v1/orgs/${who.orgId}/audit/proof${query}`, ...asUser(who.token) });
  return { statusCode: response.statusCode, proof: response.json<Proof>() };
}

describe('customer verification of an exported slice', () => {
  it('verifies with the public key alone: own events in full, the others as digests with nothing of their content', async () => {
    const { statusCode, proof } = await proofFor(a);
    expect(statusCode).toBe(200);
    const head = t.services.audit.headPosition();
    expect(proof).toMatchObject({ fromSeq: 1, toSeq: head.seq, checkpoint: { seq: head.seq, hash: head.hash, version: 1 } });
    expect(customerVerifies(proof, await pinnedKey(), a.orgId)).toEqual({ ok: true });

    const own = proof.chain.filter((i) => 'event' in i);
    const exported = (await t.app.inject({ method: 'GET', url: `/v1/orgs/${a.orgId}/audit?limit=1000`, ...asUser(a.token) })).json<{ events: { seq: number }[] }>().events;
    expect(own.map((i) => i.seq)).toEqual(exported.map((e) => e.seq));
    expect(proof.chain.length - own.length).toBeGreaterThan(3);
    // Nothing of the other organization leaves: not its id, name, people or events.
    const text = JSON.stringify(proof);
    for (const secret of [b.orgId, b.userId, 'Beta Secret Oy', b.email]) expect(text).not.toContain(secret);
  });

  it('fails the customer check for any change to the proof: an own event, a digest, a dropped item, the signature', async () => {
    const { proof } = await proofFor(a);
    const key = await pinnedKey();
    const copy = (): Proof => structuredClone(proof);
    const ownIndex = proof.chain.findIndex((i) => 'event' in i && i.event.action === 'auth.login.succeeded');
    const stubIndex = proof.chain.findIndex((i) => 'digest' in i);

    const edited = copy();
    const ownItem = edited.chain[ownIndex];
    if (!ownItem || !('event' in ownItem)) throw new Error('no own event');
    ownItem.event.action = 'auth.login.failed';
    const reDigested = copy();
    const stub = reDigested.chain[stubIndex];
    if (!stub || !('digest' in stub)) throw new Error('no stub');
    stub.digest = sha256('something else');
    const dropped = copy();
    dropped.chain.splice(stubIndex, 1);
    const truncated = copy();
    truncated.chain.pop();
    const resigned = copy();
    resigned.checkpoint.at = '2030-01-01T00:00:00.000Z';
    for (const forged of [edited, reDigested, dropped, truncated, resigned]) expect(customerVerifies(forged, key, a.orgId).ok).toBe(false);
  });

  it('chains proofs: the next one starts where the last checkpoint ended, so the history between cannot be rewritten unseen', async () => {
    const first = (await proofFor(a)).proof;
    await login(t.app, a.email);
    await login(t.app, b.email);
    const next = (await proofFor(a, `?fromSeq=${first.toSeq + 1}`)).proof;
    expect(next.fromSeq).toBe(first.toSeq + 1);
    expect(next.prevHash).toBe(first.checkpoint.hash);
    expect(customerVerifies(next, await pinnedKey(), a.orgId)).toEqual({ ok: true });
    // A sub-range, signed at its own end.
    const middle = (await proofFor(a, '?fromSeq=3&toSeq=6')).proof;
    expect(middle).toMatchObject({ fromSeq: 3, toSeq: 6, checkpoint: { seq: 6 } });
    expect(customerVerifies(middle, await pinnedKey(), a.orgId)).toEqual({ ok: true });
  });

  it('refuses to sign a proof over a stretch that does not verify (an event forged in the database)', async () => {
    const db = t.services.database.sqlite;
    db.exec('DROP TRIGGER IF EXISTS audit_events_no_update;');
    // Someone with the file rewrites one of B's events and recomputes its hash (they cannot make its MAC).
    const row = db.prepare("SELECT * FROM audit_events WHERE org_id = ? AND action = 'auth.login.succeeded' LIMIT 1").get(b.orgId) as Record<string, string | number | null>;
    const text = jcs({ seq: row.seq, id: row.id, at: row.at, action: 'auth.login.failed', actorType: row.actor_type, actorId: row.actor_id, orgId: row.org_id, subjectId: row.subject_id, data: row.data, piiCommitment: row.pii_commitment });
    db.prepare("UPDATE audit_events SET action = 'auth.login.failed', hash = ? WHERE seq = ?").run(sha256(sha256(text) + String(row.prev_hash)), row.seq);
    const { statusCode } = await proofFor(a);
    expect(statusCode).toBe(500);
  });

  it('refuses to sign a proof while the newest checkpoint contradicts the chain (history cut and rewritten on top)', async () => {
    await t.services.auditCheckpoints.tick();
    const signedSeq = t.services.audit.headPosition().seq;
    const db = t.services.database.sqlite;
    db.exec('DROP TRIGGER IF EXISTS audit_events_no_delete;');
    db.prepare('DELETE FROM audit_pii WHERE seq > ?').run(signedSeq - 2);
    db.prepare('DELETE FROM audit_events WHERE seq > ?').run(signedSeq - 2);
    for (let i = 0; i < 3; i += 1) await login(t.app, a.email);
    expect(t.services.audit.verify().ok).toBe(true);
    expect((await proofFor(a)).statusCode).toBe(500);
  });

  it('is tenant-isolated and needs audit_export', async () => {
    const other = await t.app.inject({ method: 'GET', url: `/v1/orgs/${a.orgId}/audit/proof`, ...asUser(b.token) });
    expect(other.statusCode).toBe(404);
    const free = await signup(t.app);
    const denied = await t.app.inject({ method: 'GET', url: `/v1/orgs/${free.orgId}/audit/proof`, ...asUser(free.token) });
    expect(denied.json()).toMatchObject({ code: 'plan_required', feature: 'audit_export' });
    const bad = await proofFor(a, '?fromSeq=5&toSeq=2');
    expect(bad.statusCode).toBe(400);
  });

  it('offers the newest signed checkpoint with the JSON export, which a later proof must extend', async () => {
    const before = (await t.app.inject({ method: 'GET', url: `/v1/orgs/${a.orgId}/audit`, ...asUser(a.token) })).json<{ checkpoint: Checkpoint | null }>();
    expect(before.checkpoint).toBeNull();
    await t.services.auditCheckpoints.tick();
    const page = (await t.app.inject({ method: 'GET', url: `/v1/orgs/${a.orgId}/audit`, ...asUser(a.token) })).json<{ checkpoint: Checkpoint }>();
    expect(page.checkpoint).toMatchObject({ seq: t.services.audit.headPosition().seq, version: 1 });
    await login(t.app, a.email);
    const next = (await proofFor(a, `?fromSeq=${page.checkpoint.seq + 1}`)).proof;
    expect(next.prevHash).toBe(page.checkpoint.hash);
  });
});
