import { randomBytes } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import type { Clock } from '../platform/clock.js';
import { newId } from '../platform/ids.js';
import { canonicalJson, chainHash, GENESIS_HASH, piiCommitment, type ChainedCore } from './chain.js';
import type { AuditEvent, AuditEventInput, ActorType, JsonValue } from './events.js';

export interface VerifyResult {
  ok: boolean;
  events: number;
  /** First sequence number whose row is missing, altered or out of place. */
  brokenSeq?: number;
  reason?: string;
}

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
}

/** An audit_events row in raw mode, in the column order of `verify`. */
type RawAuditRow = [
  seq: number, id: string, at: string, action: string, actorType: string, actorId: string | null, orgId: string | null,
  subjectId: string | null, data: string, piiCommitment: string | null, prevHash: string, hash: string,
];

/**
 * The SQLite side of the audit chain. `append` must be called inside a
 * transaction of the same connection (`SqliteDatabase.transaction`), so the
 * event commits or rolls back with the action it records (fail closed,
 * ASVS 16.5): if the append throws, the action throws too.
 */
export class SqliteAuditLog {
  private readonly head: BetterSqlite3.Statement<[], { seq: number; hash: string }>;
  private readonly insert: BetterSqlite3.Statement<unknown[]>;
  private readonly insertPii: BetterSqlite3.Statement<unknown[]>;

  constructor(
    private readonly sqlite: BetterSqlite3.Database,
    private readonly clock: Clock,
  ) {
    this.head = sqlite.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1');
    this.insert = sqlite.prepare(
      `INSERT INTO audit_events (seq, id, at, action, actor_type, actor_id, org_id, subject_id, data, pii_commitment, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
    const hash = chainHash(core, prevHash);
    this.insert.run(
      core.seq, core.id, core.at, core.action, core.actorType, core.actorId, core.orgId,
      core.subjectId, core.data, core.piiCommitment, prevHash, hash,
    );
    if (piiRow) this.insertPii.run(seq, ...piiRow);
    return seq;
  }

  /**
   * Walk the whole chain: gapless `seq` from 1, each `prevHash` equal to the
   * previous `hash`, each `hash` recomputed. Reports the first broken `seq`.
   */
  verify(): VerifyResult {
    let expectedSeq = 1;
    let prevHash = GENESIS_HASH;
    let events = 0;
    // Performance (issue 9): raw rows (arrays, read by position) and the
    // fixed-key JCS path of chainHash: ≥ 200 k events/s on one core.
    const rows = this.sqlite
      .prepare('SELECT seq, id, at, action, actor_type, actor_id, org_id, subject_id, data, pii_commitment, prev_hash, hash FROM audit_events ORDER BY seq')
      .raw(true)
      .iterate() as IterableIterator<RawAuditRow>;
    for (const row of rows) {
      const seq = row[0];
      if (seq !== expectedSeq) {
        return { ok: false, events, brokenSeq: expectedSeq, reason: `sequence gap: expected ${expectedSeq}, found ${seq}` };
      }
      if (row[10] !== prevHash) {
        return { ok: false, events, brokenSeq: seq, reason: 'prevHash does not match the previous event' };
      }
      const recomputed = chainHash(
        {
          seq, id: row[1], at: row[2], action: row[3], actorType: row[4],
          actorId: row[5], orgId: row[6], subjectId: row[7], data: row[8],
          piiCommitment: row[9],
        },
        row[10],
      );
      if (recomputed !== row[11]) {
        return { ok: false, events, brokenSeq: seq, reason: 'hash does not match the event' };
      }
      prevHash = row[11];
      expectedSeq += 1;
      events += 1;
    }
    return this.verifyPersonalData(events);
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

function toEvent(row: AuditRow): AuditEvent {
  return {
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
