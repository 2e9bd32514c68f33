/**
 * The audit key ring (issue 23): the precomputed-pad HMAC must be exactly
 * RFC 2104 HMAC-SHA-256, or MACs written by one code path would not verify
 * on the other; and the derived keys must differ per purpose and per key.
 */
import { createHmac, createPrivateKey, createPublicKey, hkdfSync, randomBytes, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AuditKeyRing } from '../../src/audit/audit-keys.js';

describe('AuditKeyRing', () => {
  it('computes HMAC-SHA-256 exactly as createHmac, for hashes and for any other message', () => {
    const key = randomBytes(32);
    const ring = AuditKeyRing.derive([{ id: 'k', key }]);
    // The MAC key is HKDF-SHA-256 of the ring key (RFC 5869), salt and info as in audit-keys.ts.
    const macKey = Buffer.from(hkdfSync('sha256', key, 'cleverom-identity audit', 'cleverom-identity audit-chain hmac-sha256 v1', 32));
    for (let i = 0; i < 200; i += 1) {
      const message = randomBytes(32).toString('hex');
      const expected = createHmac('sha256', macKey).update(message).digest('hex');
      expect(ring.mac(message)).toEqual({ keyId: 'k', mac: expected });
      expect(ring.checkMac('k', message, expected)).toBe('valid');
    }
    for (const odd of ['', 'short', 'Z'.repeat(64), 'é'.repeat(64), 'a'.repeat(65)]) {
      expect(ring.mac(odd).mac).toBe(createHmac('sha256', macKey).update(odd, 'utf8').digest('hex'));
    }
    expect(ring.checkMac('k', 'a'.repeat(64), 'b'.repeat(64))).toBe('invalid');
    expect(ring.checkMac('other', 'a'.repeat(64), 'b'.repeat(64))).toBe('unknown_key');
  });

  it('derives distinct keys per ring entry, and the checkpoint key from the same material (Ed25519 seed by HKDF)', () => {
    const [k1, k2] = [randomBytes(32), randomBytes(32)];
    const ring = AuditKeyRing.derive([{ id: 'new', key: k2 }, { id: 'old', key: k1 }]);
    const onlyOld = AuditKeyRing.derive([{ id: 'old', key: k1 }]);
    expect(ring.primaryKeyId).toBe('new');
    const hash = 'c'.repeat(64);
    const { mac } = onlyOld.mac(hash);
    expect(ring.checkMac('old', hash, mac)).toBe('valid');
    expect(ring.checkMac('new', hash, mac)).toBe('invalid');
    expect(ring.publicKeys().map((k) => k.kid)).toEqual(['new', 'old']);
    // The published key is the public half of the HKDF-derived seed.
    const seed = Buffer.from(hkdfSync('sha256', k1, 'cleverom-identity audit', 'cleverom-identity audit-checkpoint ed25519 v1', 32));
    const privateKey = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
    expect(ring.publicKey('old')?.x).toBe(createPublicKey(privateKey).export({ format: 'jwk' }).x);
    const signature = sign(null, Buffer.from('m'), privateKey).toString('base64url');
    expect(ring.checkSignature('old', 'm', signature)).toBe('valid');
    expect(ring.checkSignature('new', 'm', signature)).toBe('invalid');
    // The MAC key is not the signing seed, nor the ring key itself.
    expect(onlyOld.mac(hash).mac).not.toBe(createHmac('sha256', seed).update(hash).digest('hex'));
    expect(onlyOld.mac(hash).mac).not.toBe(createHmac('sha256', k1).update(hash).digest('hex'));
  });
});
