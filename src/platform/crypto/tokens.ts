import { createHash, hash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * A new random token of `bytes` bytes, base64url. Session tokens use 32 bytes
 * (256 bits, ASVS 7.2.3 asks for ≥ 128 bits of entropy; API.md asks for ≥ 256).
 */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** SHA-256 of a token, hex. Only this is ever stored (SECURITY.md: session token). */
export function hashToken(token: string): string {
  // One-shot `crypto.hash` (Node ≥ 20.12): about half the cost of createHash() (issue 9).
  return hash('sha256', token, 'hex');
}

export function sha256Hex(data: string | Buffer): string {
  return typeof data === 'string' ? hash('sha256', data, 'hex') : createHash('sha256').update(data).digest('hex');
}

/**
 * Constant-time comparison of two strings. Lengths are compared first (which
 * leaks only the length) because `timingSafeEqual` throws on unequal lengths.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  if (left.length !== right.length) return false;
  return timingSafeEqual(left, right);
}
