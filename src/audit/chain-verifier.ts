import type { AuditKeyRing } from './audit-keys.js';
import { eventDigest, GENESIS_HASH, legacyChainHash, linkHash, type ChainedCore, type ChainFormat } from './chain.js';

/** An audit_events row in raw mode, in this column order (`VERIFY_COLUMNS`). */
export type RawAuditRow = [
  seq: number, id: string, at: string, action: string, actorType: string, actorId: string | null, orgId: string | null,
  subjectId: string | null, data: string, piiCommitment: string | null, prevHash: string, hash: string,
  mac: string | null, keyId: string | null,
];

export const VERIFY_COLUMNS = 'seq, id, at, action, actor_type, actor_id, org_id, subject_id, data, pii_commitment, prev_hash, hash, mac, key_id';

/** A point of the chain: the event `seq` (0 = before the first), its hash and its format. */
export interface ChainPosition {
  seq: number;
  hash: string;
  format: ChainFormat | null;
}

export const GENESIS_POSITION: ChainPosition = { seq: 0, hash: GENESIS_HASH, format: null };

export interface ChainBreak {
  brokenSeq: number;
  reason: string;
}

export function coreOf(row: RawAuditRow): ChainedCore {
  return {
    seq: row[0], id: row[1], at: row[2], action: row[3], actorType: row[4],
    actorId: row[5], orgId: row[6], subjectId: row[7], data: row[8], piiCommitment: row[9],
  };
}

/**
 * The rules of the chain, applied row by row from a known position
 * (SECURITY.md: audit; docs/threat-model.md, "Audit chain"):
 * 1. gapless: the row after `seq` n is `seq` n+1;
 * 2. linked: its `prevHash` is the hash of n;
 * 3. hashed: its `hash` is recomputed from its content in its format;
 * 4. keyed (a row with a `key_id`): its `mac` is the HMAC of its hash
 *    under that key, so a row written without the audit key is refused;
 * 5. legacy rows (no `key_id`, no `mac`, written before the chain was
 *    keyed) only as a prefix: a legacy-looking row after a keyed one is a
 *    forgery that tries to dodge rule 4.
 * Rules 1–3 alone would accept a chain rebuilt with recomputed hashes;
 * rule 4 needs the key, which is not in the database.
 */
export class ChainVerifier {
  private current: ChainPosition;
  /** Legacy rows accepted so far. */
  legacyEvents = 0;

  constructor(
    private readonly keys: AuditKeyRing,
    start: ChainPosition,
  ) {
    this.current = start;
  }

  get position(): ChainPosition {
    return this.current;
  }

  /** Check the next row; advances past it when it holds, else names the break. */
  check(row: RawAuditRow): ChainBreak | null {
    const seq = row[0];
    const expected = this.current.seq + 1;
    if (seq !== expected) return { brokenSeq: expected, reason: `sequence gap: expected ${expected}, found ${seq}` };
    if (row[10] !== this.current.hash) return { brokenSeq: seq, reason: 'prevHash does not match the previous event' };
    const keyId = row[13];
    const mac = row[12];
    const hash = row[11];
    if (keyId === null) {
      if (this.current.format === 'keyed') return { brokenSeq: seq, reason: 'a legacy-format (unkeyed) event after keyed events: written without the audit key' };
      if (mac !== null) return { brokenSeq: seq, reason: 'a MAC without a key id' };
      if (legacyChainHash(coreOf(row), row[10]) !== hash) return { brokenSeq: seq, reason: 'hash does not match the event' };
      this.legacyEvents += 1;
      this.current = { seq, hash, format: 'legacy' };
      return null;
    }
    if (linkHash(eventDigest(coreOf(row)), row[10]) !== hash) return { brokenSeq: seq, reason: 'hash does not match the event' };
    const check = mac === null ? 'invalid' : this.keys.checkMac(keyId, hash, mac);
    if (check === 'unknown_key') return { brokenSeq: seq, reason: `MAC under key id ${keyId}, which is not in the audit key ring (AUDIT_KEY, or SECRETS_KEY when AUDIT_KEY is unset)` };
    if (check === 'invalid') return { brokenSeq: seq, reason: 'MAC does not match: the event was not written with the audit key' };
    this.current = { seq, hash, format: 'keyed' };
    return null;
  }
}
