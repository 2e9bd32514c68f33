import canonicalize from 'canonicalize';
import { sha256Hex } from '../platform/crypto/tokens.js';

/** prevHash of the first event. */
export const GENESIS_HASH = '0'.repeat(64);

/** The hashed part of an event: everything but `prevHash`/`hash`, with `data` as its canonical JSON text. */
export interface ChainedCore {
  seq: number;
  id: string;
  at: string;
  action: string;
  actorType: string;
  actorId: string | null;
  orgId: string | null;
  subjectId: string | null;
  data: string;
  piiCommitment: string | null;
}

/** RFC 8785 JSON Canonicalization Scheme. */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new Error('value cannot be canonicalised');
  return text;
}

/** A UTF-16 surrogate (paired or lone): such strings take the general path, which refuses lone ones. */
const SURROGATE = /[\uD800-\uDFFF]/;

function jsonString(value: string): string | undefined {
  return SURROGATE.test(value) ? undefined : JSON.stringify(value);
}

function jsonNullable(value: string | null): string | undefined {
  if (value === null) return 'null';
  return typeof value === 'string' ? jsonString(value) : undefined;
}

/**
 * RFC 8785 text of a chained core, built directly from its ten fixed keys.
 *
 * Performance (issue 9): the general `canonicalize` walks and sorts keys for
 * every event; this writes the keys in their JCS order (UTF-16 code-unit
 * order, checked at load below) and each value the way JCS does
 * (ECMAScript `JSON.stringify` for strings and safe integers, `null`).
 * Anything outside that shape (a non-integer seq, a non-string field, any
 * surrogate) falls back to `canonicalize`, so the output is byte-identical
 * in every case; test/audit/chain-jcs.test.ts checks it against the library.
 */
export function canonicalCore(core: ChainedCore): string {
  if (typeof core.seq === 'number' && Number.isSafeInteger(core.seq)) {
    const action = jsonString(core.action);
    const actorId = jsonNullable(core.actorId);
    const actorType = jsonString(core.actorType);
    const at = jsonString(core.at);
    const data = jsonString(core.data);
    const id = jsonString(core.id);
    const orgId = jsonNullable(core.orgId);
    const piiCommitment = jsonNullable(core.piiCommitment);
    const subjectId = jsonNullable(core.subjectId);
    if (
      typeof core.action === 'string' && typeof core.actorType === 'string' && typeof core.at === 'string' &&
      typeof core.data === 'string' && typeof core.id === 'string' &&
      action !== undefined && actorId !== undefined && actorType !== undefined && at !== undefined && data !== undefined &&
      id !== undefined && orgId !== undefined && piiCommitment !== undefined && subjectId !== undefined
    ) {
      return `{"action":${action},"actorId":${actorId},"actorType":${actorType},"at":${at},"data":${data},"id":${id},"orgId":${orgId},"piiCommitment":${piiCommitment},"seq":${JSON.stringify(core.seq)},"subjectId":${subjectId}}`;
    }
  }
  return canonicalJson(core);
}

/** The keys of a core in the order `canonicalCore` writes them; must be JCS order. */
export const CORE_KEY_ORDER = ['action', 'actorId', 'actorType', 'at', 'data', 'id', 'orgId', 'piiCommitment', 'seq', 'subjectId'] as const;
if ([...CORE_KEY_ORDER].sort().join() !== CORE_KEY_ORDER.join()) throw new Error('CORE_KEY_ORDER is not in JCS order');

/**
 * The two chain formats. A row's format is told by its `key_id` column:
 * `NULL` for a legacy row, written before the chain was keyed (issue 23),
 * a key id for a keyed row.
 *
 * - legacy: `hash = SHA-256(JCS(core) ‖ prevHash)`, no MAC;
 * - keyed:  `digest = SHA-256(JCS(core))`, `hash = SHA-256(digest ‖ prevHash)`,
 *   `mac = HMAC-SHA-256(auditKey[keyId], hash)` (audit-keys.ts).
 *
 * The keyed link hashes a digest of the event instead of the event itself so
 * that a customer can recompute every link of a range from the full events
 * of their organization and bare `{seq, digest}` stubs of everyone else's
 * (docs/api.md, "Verifying an exported slice"). All hex is lower case.
 */
export type ChainFormat = 'legacy' | 'keyed';

/** Legacy rows: `hash = SHA-256(canonical(event) ‖ prevHash)`. */
export function legacyChainHash(core: ChainedCore, prevHash: string): string {
  return sha256Hex(canonicalCore(core) + prevHash);
}

/** Keyed rows: the digest of the event's content, `SHA-256(JCS(core))`. */
export function eventDigest(core: ChainedCore): string {
  return sha256Hex(canonicalCore(core));
}

/** Keyed rows: the link, `SHA-256(digest ‖ prevHash)` over the two hex strings. */
export function linkHash(digest: string, prevHash: string): string {
  return sha256Hex(digest + prevHash);
}

/** Salted commitment to personal data kept outside the chain. */
export function piiCommitment(salt: string, piiJson: string): string {
  return sha256Hex(`${salt}:${piiJson}`);
}
