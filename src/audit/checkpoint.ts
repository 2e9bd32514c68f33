import type { AuditKeyRing, KeyCheck } from './audit-keys.js';
import { canonicalJson } from './chain.js';

/**
 * A signed checkpoint of the audit chain: "at time `at`, the event `seq`
 * of the chain had hash `hash`" (SECURITY.md: "audit key and checkpoints").
 *
 * `signature` is Ed25519 (RFC 8032), base64url, over the RFC 8785 canonical
 * JSON of the other five members, under the checkpoint key `keyId`
 * (audit-keys.ts; public keys at `GET /v1/audit/checkpoint-keys`). Because
 * each event's hash covers every event before it, a checkpoint commits to
 * the whole history up to `seq`: a history rewritten or truncated below it
 * no longer has `hash` at `seq` (`audit:verify --checkpoint FILE`).
 * `seq` 0 with the genesis hash is the empty chain.
 */
export interface Checkpoint {
  version: 1;
  seq: number;
  hash: string;
  at: string;
  keyId: string;
  signature: string;
}

export type UnsignedCheckpoint = Omit<Checkpoint, 'signature'>;

/** The exact text that is signed. */
export function checkpointSigningInput(checkpoint: UnsignedCheckpoint): string {
  return canonicalJson({ version: checkpoint.version, seq: checkpoint.seq, hash: checkpoint.hash, at: checkpoint.at, keyId: checkpoint.keyId });
}

export function signCheckpoint(keys: AuditKeyRing, head: { seq: number; hash: string }, at: Date): Checkpoint {
  const unsigned: UnsignedCheckpoint = { version: 1, seq: head.seq, hash: head.hash, at: at.toISOString(), keyId: keys.primaryKeyId };
  const { signature } = keys.sign(checkpointSigningInput(unsigned));
  return { ...unsigned, signature };
}

export function checkCheckpointSignature(keys: AuditKeyRing, checkpoint: Checkpoint): KeyCheck {
  return keys.checkSignature(checkpoint.keyId, checkpointSigningInput(checkpoint), checkpoint.signature);
}

const CHECKPOINT_KEYS = ['at', 'hash', 'keyId', 'seq', 'signature', 'version'];

/** A checkpoint read from a file or a request: exactly the six members, each well formed. */
export function parseCheckpoint(value: unknown): { ok: true; checkpoint: Checkpoint } | { ok: false; reason: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'a checkpoint is a JSON object' };
  const record = value as Record<string, unknown>;
  if (Object.keys(record).sort().join() !== CHECKPOINT_KEYS.join()) return { ok: false, reason: `a checkpoint has exactly the members ${CHECKPOINT_KEYS.join(', ')}` };
  const { version, seq, hash, at, keyId, signature } = record;
  if (version !== 1) return { ok: false, reason: 'unsupported checkpoint version' };
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return { ok: false, reason: 'seq must be a whole number ≥ 0' };
  if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) return { ok: false, reason: 'hash must be 64 lower-case hex digits' };
  if (typeof at !== 'string' || Number.isNaN(Date.parse(at))) return { ok: false, reason: 'at must be an ISO 8601 time' };
  if (typeof keyId !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(keyId)) return { ok: false, reason: 'keyId is malformed' };
  if (typeof signature !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(signature)) return { ok: false, reason: 'signature must be 64 bytes in base64url' };
  return { ok: true, checkpoint: { version, seq, hash, at, keyId, signature } };
}
