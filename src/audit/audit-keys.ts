import { createHmac, createPrivateKey, createPublicKey, hash, hkdfSync, sign, verify, type KeyObject } from 'node:crypto';
import type { SecretKey } from '../platform/crypto/secret-box.js';
import { constantTimeEqual } from '../platform/crypto/tokens.js';

/**
 * The keys of the audit chain (SECURITY.md: "audit key and checkpoints").
 *
 * Each entry of the ring (`AUDIT_KEY`, or `SECRETS_KEY` when that is unset)
 * is input keying material for two keys, derived with HKDF-SHA-256
 * (RFC 5869) under distinct `info` strings, so neither is the sealing key
 * of `SECRETS_KEY` nor each other:
 * - the MAC key: `mac = HMAC-SHA-256(macKey, hash)` (RFC 2104) on every
 *   keyed event. Nothing in the database lets anyone compute it, so an
 *   event forged by whoever can write the database file has no valid MAC;
 * - the Ed25519 seed of the checkpoint signing key (RFC 8032): checkpoints
 *   of the chain head are signed with it, and anyone holding its public key
 *   (`GET /v1/audit/checkpoint-keys`) can check them.
 *
 * The key id is kept, so the ring can rotate: the first key MACs new events
 * and signs new checkpoints; every key still verifies what it made.
 */
const HKDF_SALT = Buffer.from('cleverom-identity audit', 'utf8');
const MAC_INFO = Buffer.from('cleverom-identity audit-chain hmac-sha256 v1', 'utf8');
const CHECKPOINT_INFO = Buffer.from('cleverom-identity audit-checkpoint ed25519 v1', 'utf8');
/** PKCS #8 DER prefix of an Ed25519 private key (RFC 8410 §7); the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** An Ed25519 public key as a JWK (RFC 8037), `kid` = the key id of the ring entry. */
export interface CheckpointPublicKey {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: 'EdDSA';
  use: 'sig';
}

export type KeyCheck = 'valid' | 'invalid' | 'unknown_key';

/**
 * HMAC-SHA-256 (RFC 2104) of a 64-character hash, with the key's inner and
 * outer pads computed once: `H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m))`.
 * Performance (`audit:verify` checks one MAC per event): about half the
 * cost of `createHmac` per call. Any other message length takes
 * `createHmac`. test/audit/audit-keys.test.ts checks both against `createHmac`.
 */
class HmacSha256 {
  private readonly inner = Buffer.alloc(64 + 64);
  private readonly outer = Buffer.alloc(64 + 32);

  constructor(private readonly key: Buffer) {
    // Keys up to the SHA-256 block size (64 bytes) are zero-padded (RFC 2104 §2); ours are 32.
    if (key.length > 64) throw new Error('audit MAC key longer than the SHA-256 block');
    for (let i = 0; i < 64; i += 1) {
      const k = key[i] ?? 0;
      this.inner[i] = k ^ 0x36;
      this.outer[i] = k ^ 0x5c;
    }
  }

  hex(message: string): string {
    if (message.length !== 64 || !/^[0-9a-f]{64}$/.test(message)) return createHmac('sha256', this.key).update(message, 'utf8').digest('hex');
    this.inner.write(message, 64, 'latin1');
    hash('sha256', this.inner, 'buffer').copy(this.outer, 64);
    return hash('sha256', this.outer, 'hex');
  }
}

interface RingEntry {
  id: string;
  mac: HmacSha256;
  signing: KeyObject;
  publicKey: KeyObject;
  jwk: CheckpointPublicKey;
}

export class AuditKeyRing {
  private readonly entries: ReadonlyMap<string, RingEntry>;
  private readonly primary: RingEntry;

  private constructor(entries: RingEntry[]) {
    const first = entries[0];
    if (!first) throw new Error('the audit key ring needs at least one key');
    this.primary = first;
    this.entries = new Map(entries.map((e) => [e.id, e]));
  }

  /** Derive the MAC and checkpoint keys of every entry (see the file comment). */
  static derive(ring: readonly SecretKey[]): AuditKeyRing {
    return new AuditKeyRing(
      ring.map(({ id, key }) => {
        if (key.length !== 32) throw new Error(`audit key ${id} is not 32 bytes`);
        const macKey = Buffer.from(hkdfSync('sha256', key, HKDF_SALT, MAC_INFO, 32));
        const seed = Buffer.from(hkdfSync('sha256', key, HKDF_SALT, CHECKPOINT_INFO, 32));
        const signing = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
        const publicKey = createPublicKey(signing);
        const { x } = publicKey.export({ format: 'jwk' });
        if (typeof x !== 'string') throw new Error('Ed25519 public key without x');
        return { id, mac: new HmacSha256(macKey), signing, publicKey, jwk: { kty: 'OKP', crv: 'Ed25519', x, kid: id, alg: 'EdDSA', use: 'sig' } };
      }),
    );
  }

  get primaryKeyId(): string {
    return this.primary.id;
  }

  /** MAC of an event's hash under the primary key (new events). */
  mac(eventHash: string): { keyId: string; mac: string } {
    return { keyId: this.primary.id, mac: this.primary.mac.hex(eventHash) };
  }

  /** Is `mac` the MAC of `eventHash` under key `keyId`? */
  checkMac(keyId: string, eventHash: string, mac: string): KeyCheck {
    const entry = this.entries.get(keyId);
    if (!entry) return 'unknown_key';
    return constantTimeEqual(entry.mac.hex(eventHash), mac) ? 'valid' : 'invalid';
  }

  /** Ed25519 signature (base64url) of `message` under the primary key. */
  sign(message: string): { keyId: string; signature: string } {
    return { keyId: this.primary.id, signature: sign(null, Buffer.from(message, 'utf8'), this.primary.signing).toString('base64url') };
  }

  checkSignature(keyId: string, message: string, signature: string): KeyCheck {
    const entry = this.entries.get(keyId);
    if (!entry) return 'unknown_key';
    const bytes = Buffer.from(signature, 'base64url');
    // Ed25519 signatures are 64 bytes (RFC 8032 §5.1.6); base64url round-trips exactly.
    if (bytes.length !== 64 || bytes.toString('base64url') !== signature) return 'invalid';
    return verify(null, Buffer.from(message, 'utf8'), entry.publicKey, bytes) ? 'valid' : 'invalid';
  }

  /** The public checkpoint keys of the whole ring, primary first. */
  publicKeys(): CheckpointPublicKey[] {
    return [...this.entries.values()].map((e) => ({ ...e.jwk }));
  }

  publicKey(keyId: string): CheckpointPublicKey | null {
    const entry = this.entries.get(keyId);
    return entry ? { ...entry.jwk } : null;
  }
}
