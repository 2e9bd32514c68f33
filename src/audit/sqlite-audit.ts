import { randomBytes } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import type { Clock } from '../platform/clock.js';
import { newId } from '../platform/ids.js';
import type { AuditKeyRing } from './audit-keys.js';
import { canonicalJson, eventDigest, GENESIS_HASH, linkHash, piiCommitment, type ChainedCore, type ChainFormat } from './chain.js';
import { ChainVerifier, coreOf, GENESIS_POSITION, VERIFY_COLUMNS, type ChainBreak, type ChainPosition, type RawAuditRow } from './chain-verifier.js';
import type { AuditEvent, AuditEventInput, ActorType, JsonValue } from './events.js';

export interface VerifyResult {
  ok: boolean;
  events: number;
  /** First sequence number whose row is missing, altered or out of place. */
  brokenSeq?: number;
  reason?: string;
  /** Events in the legacy (unkeyed) format at the start of the chain, when there are any. */
  legacyEvents?: number;
}

/** The outcome of checking a stretch of the chain from a known position. */
export type RangeCheck = { ok: true; position: ChainPosition; checked: number } | ({ ok: false; position: ChainPosition; checked: number } & ChainBreak);

/** One item of an organization's proof: its own events in full, anyone else's as a digest (audit-service.ts). */
export type ProofItem = { seq: number; event: AuditEvent } | { seq: number; digest: string };

interface AuditRow {
  seq: number;
  id: string;
  at: string;
  action: string;
  actor_type: string;
  actor_id: string | null;
  org_id: string | null;
  subject_id: string | null;
  data: string;
  pii_commitment: string | null;
  prev_hash: string;
  hash: string;
  key_id: string | null;
}

/**
 * The SQLite side of the audit chain. `append` must be called inside a
 * transaction of the same connection (`SqliteDatabase.transaction`), so the
 * event commits or rolls back with the action it records (fail closed,
 * ASVS 16.5): if the append throws, the action throws too.
 *
 * Every new event is keyed (chain.ts, audit-keys.ts): its hash links it to
 * the previous event and its MAC, under the audit key held outside the
 * database, proves that this service wrote it.
 */
export class SqliteAuditLog {
  private readonly head: BetterSqlite3.Statement<[], { seq: number; hash: string }>;
  private readonly insert: BetterSqlite3.Statement<unknown[]>;
  private readonly insertPii: BetterSqlite3.Statement<unknown[]>;
  /** Legacy rows are a prefix: once there is a keyed row, the first one never changes. */
  private firstKeyed: number | null = null;

  constructor(
    private readonly sqlite: BetterSqlite3.Database,
    private readonly clock: Clock,
    private readonly keys: AuditKeyRing,
  ) {
    this.head = sqlite.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1');
    this.insert = sqlite.prepare(
      `INSERT INTO audit_events (seq, id, at, action, actor_type, actor_id, org_id, subject_id, data, pii_commitment, prev_hash, hash, mac, key_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insertPii = sqlite.prepare('INSERT INTO audit_pii (seq, user_id, salt, data) VALUES (?, ?, ?, ?)');
  }

  /**
   * For a per-account limit counted in the log itself (e.g. data exports):
   * the time of the `n`-th most recent `action` event by `actorId` after
   * `since`, or null when there are fewer than `n`. Call it inside the
   * transaction that appends the next such event, so the count and the
   * append are one atomic step (two concurrent requests cannot both pass).
   * The walk goes back from the newest event of the actor (audit_actor_idx)
   * and stops at the `n`-th match.
   */
  nthRecent(input: { action: string; actorId: string; since: Date; n: number }): Date | null {
    if (!this.sqlite.inTransaction) throw new Error('count audit events inside the transaction that appends the next one');
    const row = this.sqlite
      .prepare('SELECT at FROM audit_events WHERE actor_id = ? AND action = ? AND at > ? ORDER BY seq DESC LIMIT 1 OFFSET ?')
      .get(input.actorId, input.action, input.since.toISOString(), input.n - 1) as { at: string } | undefined;
    return row ? new Date(row.at) : null;
  }

  /** Append one event; returns its sequence number. Call inside a transaction. */
  append(event: AuditEventInput): number {
    if (!this.sqlite.inTransaction) throw new Error('audit events are written inside the transaction of their action');
    const last = this.head.get();
    const seq = (last?.seq ?? 0) + 1;
    const prevHash = last?.hash ?? GENESIS_HASH;

    let commitment: string | null = null;
    let piiRow: [string | null, string, string] | null = null;
    if (event.pii) {
      const { userId, ...details } = event.pii;
      const piiJson = canonicalJson(details);
      const salt = randomBytes(16).toString('hex');
      commitment = piiCommitment(salt, piiJson);
      piiRow = [userId, salt, piiJson];
    }
    const core: ChainedCore = {
      seq,
      id: newId(),
      at: this.clock.now().toISOString(),
      action: event.action,
      actorType: event.actor.type,
      actorId: event.actor.id,
      orgId: event.orgId ?? null,
      subjectId: event.subjectId ?? null,
      data: canonicalJson(event.data ?? {}),
      piiCommitment: commitment,
    };
    // Keyed format (chain.ts): digest of the content, link to the previous hash, MAC of the link.
    const hash = linkHash(eventDigest(core), prevHash);
    const { keyId, mac } = this.keys.mac(hash);
    this.insert.run(
      core.seq, core.id, core.at, core.action, core.actorType, core.actorId, core.orgId,
      core.subjectId, core.data, core.piiCommitment, prevHash, hash, mac, keyId,
    );
    if (piiRow) this.insertPii.run(seq, ...piiRow);
    return seq;
  }

  /**
   * Walk the whole chain with the rules of `ChainVerifier` (gapless, linked,
   * hashed, MAC'd, legacy only as a prefix), then the personal side rows.
   * Reports the first broken `seq`. A chain cut short at its end is not
   * broken by these rules: only a checkpoint shows that (checkpoints.ts).
   */
  verify(): VerifyResult {
    const verifier = new ChainVerifier(this.keys, GENESIS_POSITION);
    // Performance (issue 9): raw rows (arrays, read by position), the
    // fixed-key JCS path of the hashes and a precomputed HMAC (audit-keys.ts).
    const rows = this.sqlite.prepare(`SELECT ${VERIFY_COLUMNS} FROM audit_events ORDER BY seq`).raw(true).iterate() as IterableIterator<RawAuditRow>;
    for (const row of rows) {
      const broken = verifier.check(row);
      if (broken) {
        return { ok: false, events: verifier.position.seq, ...broken };
      }
    }
    const result = this.verifyPersonalData(verifier.position.seq);
    return verifier.legacyEvents > 0 ? { ...result, legacyEvents: verifier.legacyEvents } : result;
  }

  /**
   * Check the rows after `from` up to `toSeq` (at most `limit` of them) with
   * the same rules, continuing from `from` as already verified. The
   * checkpoint writer walks the chain in such slices (checkpoints.ts).
   */
  verifyRange(from: ChainPosition, toSeq: number, limit: number): RangeCheck {
    const verifier = new ChainVerifier(this.keys, from);
    const rows = this.sqlite
      .prepare(`SELECT ${VERIFY_COLUMNS} FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`)
      .raw(true)
      .iterate(from.seq, toSeq, limit) as IterableIterator<RawAuditRow>;
    let checked = 0;
    for (const row of rows) {
      const broken = verifier.check(row);
      if (broken) {
        return { ok: false, position: verifier.position, checked, ...broken };
      }
      checked += 1;
    }
    return { ok: true, position: verifier.position, checked };
  }

  /**
   * The items of an organization's proof for `fromSeq..toSeq`, every row
   * checked on the way (a proof is signed only over a verified stretch):
   * the organization's events in full, every other event as its digest
   * only, so no other organization's content leaves the service.
   */
  proofItems(orgId: string, fromSeq: number, toSeq: number): { ok: true; prevHash: string; items: ProofItem[]; last: ChainPosition } | ({ ok: false } & ChainBreak) {
    const before = this.positionAt(fromSeq - 1);
    if (!before) return { ok: false, brokenSeq: fromSeq - 1, reason: 'the event before the range is missing' };
    const verifier = new ChainVerifier(this.keys, before);
    const items: ProofItem[] = [];
    const rows = this.sqlite
      .prepare(`SELECT ${VERIFY_COLUMNS} FROM audit_events WHERE seq >= ? AND seq <= ? ORDER BY seq`)
      .raw(true)
      .iterate(fromSeq, toSeq) as IterableIterator<RawAuditRow>;
    for (const row of rows) {
      const broken = verifier.check(row) ?? (row[13] === null ? { brokenSeq: row[0], reason: 'a legacy-format event in a keyed range' } : null);
      if (broken) {
        return { ok: false, ...broken };
      }
      items.push(row[6] === orgId ? { seq: row[0], event: rawToEvent(row) } : { seq: row[0], digest: eventDigest(coreOf(row)) });
    }
    if (verifier.position.seq !== toSeq) return { ok: false, brokenSeq: verifier.position.seq + 1, reason: 'the range ends before toSeq' };
    return { ok: true, prevHash: before.hash, items, last: verifier.position };
  }

  /** The last event of the chain (the genesis position when it is empty). */
  headPosition(): ChainPosition {
    const row = this.sqlite.prepare('SELECT seq, hash, key_id FROM audit_events ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string; key_id: string | null } | undefined;
    return row ? { seq: row.seq, hash: row.hash, format: formatOf(row.key_id) } : GENESIS_POSITION;
  }

  /** The event `seq` of the chain, or null when there is none (0 = genesis). */
  positionAt(seq: number): ChainPosition | null {
    if (seq === 0) return GENESIS_POSITION;
    const row = this.sqlite.prepare('SELECT seq, hash, key_id FROM audit_events WHERE seq = ?').get(seq) as { seq: number; hash: string; key_id: string | null } | undefined;
    return row ? { seq: row.seq, hash: row.hash, format: formatOf(row.key_id) } : null;
  }

  /**
   * The first keyed event's `seq`, or null while the chain has none (empty,
   * or legacy rows only). Legacy rows are a prefix (chain-verifier.ts), so
   * this is a binary search over `seq`: O(log n) point reads, however long
   * the legacy prefix. On a tampered chain the answer may be off; `verify`
   * and the proofs check every row anyway.
   */
  firstKeyedSeq(): number | null {
    if (this.firstKeyed !== null) return this.firstKeyed;
    const head = this.headPosition();
    if (head.format !== 'keyed') return null;
    const keyed = this.sqlite.prepare('SELECT key_id IS NOT NULL AS keyed FROM audit_events WHERE seq = ?');
    let low = 1;
    let high = head.seq;
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      const row = keyed.get(middle) as { keyed: number } | undefined;
      if (row?.keyed === 1) high = middle;
      else low = middle + 1;
    }
    this.firstKeyed = low;
    return low;
  }

  /**
   * The personal data kept beside the chain (`audit_pii`, erasable) must be
   * what its event committed to: SHA-256 of salt and data equal to the
   * event's `piiCommitment`. An erased row is simply absent (GDPR Art. 17);
   * an edited one, or one whose event committed to nothing, is tampering.
   */
  private verifyPersonalData(events: number): VerifyResult {
    const rows = this.sqlite
      .prepare('SELECT p.seq, p.salt, p.data, e.pii_commitment FROM audit_pii p LEFT JOIN audit_events e ON e.seq = p.seq ORDER BY p.seq')
      .raw(true)
      .iterate() as IterableIterator<[number, string, string, string | null]>;
    for (const [seq, salt, data, commitment] of rows) {
      if (commitment === null || piiCommitment(salt, data) !== commitment) {
        return { ok: false, events, brokenSeq: seq, reason: 'personal data of the event does not match its commitment' };
      }
    }
    return { ok: true, events };
  }

  /** Events matching a filter, oldest first, from `afterSeq` (cursor). */
  list(filter: AuditFilter): AuditEvent[] {
    if (filter.actions?.length === 0) return [];
    const where: string[] = ['seq > ?'];
    const args: unknown[] = [filter.afterSeq ?? 0];
    if (filter.orgId) { where.push('org_id = ?'); args.push(filter.orgId); }
    if (filter.actorId) { where.push('actor_id = ?'); args.push(filter.actorId); }
    if (filter.subjectId) { where.push('subject_id = ?'); args.push(filter.subjectId); }
    if (filter.action) { where.push('action = ?'); args.push(filter.action); }
    if (filter.actions) { where.push(`action IN (${filter.actions.map(() => '?').join(', ')})`); args.push(...filter.actions); }
    if (filter.from) { where.push('at >= ?'); args.push(filter.from.toISOString()); }
    if (filter.to) { where.push('at < ?'); args.push(filter.to.toISOString()); }
    args.push(filter.limit ?? 100);
    const rows = this.sqlite
      .prepare(`SELECT * FROM audit_events WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`)
      .all(...args) as AuditRow[];
    return rows.map(toEvent);
  }
}

export interface AuditFilter {
  orgId?: string;
  actorId?: string;
  subjectId?: string;
  action?: string;
  actions?: readonly string[];
  from?: Date;
  to?: Date;
  afterSeq?: number;
  limit?: number;
}

function formatOf(keyId: string | null): ChainFormat {
  return keyId === null ? 'legacy' : 'keyed';
}

function rawToEvent(row: RawAuditRow): AuditEvent {
  return {
    seq: row[0],
    id: row[1],
    at: row[2],
    action: row[3],
    actorType: row[4] as ActorType,
    actorId: row[5],
    orgId: row[6],
    subjectId: row[7],
    data: JSON.parse(row[8]) as { [key: string]: JsonValue },
    piiCommitment: row[9],
    prevHash: row[10],
    hash: row[11],
    format: formatOf(row[13]),
  };
}

function toEvent(row: AuditRow): AuditEvent {
  return {
    format: formatOf(row.key_id),
    prevHash: row.prev_hash,
    hash: row.hash,
    piiCommitment: row.pii_commitment,
    seq: row.seq,
    id: row.id,
    at: row.at,
    action: row.action,
    actorType: row.actor_type as ActorType,
    actorId: row.actor_id,
    orgId: row.org_id,
    subjectId: row.subject_id,
    data: JSON.parse(row.data) as { [key: string]: JsonValue },
  };
}
