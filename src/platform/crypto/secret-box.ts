import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM sealing of secrets at rest (TOTP secrets, IdP client secrets),
 * with a key id so keys can rotate (SECURITY.md: secrets at rest).
 *
 * Format: `v1.<keyId>.<iv b64url>.<ciphertext b64url>.<tag b64url>`.
 * The first key of the ring encrypts; every key decrypts.
 */
export interface SecretKey {
  id: string;
  key: Buffer;
}

export class SecretBox {
  private readonly keys: ReadonlyMap<string, Buffer>;
  private readonly primary: SecretKey;

  constructor(ring: readonly SecretKey[]) {
    const first = ring[0];
    if (!first) throw new Error('SecretBox needs at least one key');
    for (const k of ring) {
      if (k.key.length !== 32) throw new Error(`secret key ${k.id} is not 32 bytes`);
    }
    this.primary = first;
    this.keys = new Map(ring.map((k) => [k.id, k.key]));
  }

  get primaryKeyId(): string {
    return this.primary.id;
  }

  /** Seal `plaintext`; `context` is bound as additional authenticated data. */
  seal(plaintext: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.primary.key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return ['v1', this.primary.id, iv.toString('base64url'), ct.toString('base64url'), tag.toString('base64url')].join('.');
  }

  open(sealed: string, context: string): string {
    const [version, keyId, iv, ct, tag] = sealed.split('.');
    if (version !== 'v1' || !keyId || !iv || ct === undefined || !tag) throw new Error('sealed value is malformed');
    const key = this.keys.get(keyId);
    if (!key) throw new Error(`sealed with unknown key id ${keyId}`);
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
  }

  /** True when the value was sealed with a key other than the primary (re-seal it). */
  needsReseal(sealed: string): boolean {
    return sealed.split('.')[1] !== this.primary.id;
  }
}
