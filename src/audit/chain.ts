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

/** `hash = SHA-256(canonical(event) ‖ prevHash)` (SECURITY.md: audit). */
export function chainHash(core: ChainedCore, prevHash: string): string {
  return sha256Hex(canonicalJson(core) + prevHash);
}

/** Salted commitment to personal data kept outside the chain. */
export function piiCommitment(salt: string, piiJson: string): string {
  return sha256Hex(`${salt}:${piiJson}`);
}
