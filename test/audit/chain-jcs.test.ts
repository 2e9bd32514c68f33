/**
 * The fixed-key JCS path of the audit chain (issue 9) must write exactly what
 * the RFC 8785 library writes for every core, or old chains stop verifying.
 */
import canonicalize from 'canonicalize';
import { describe, expect, it } from 'vitest';
import { canonicalCore, legacyChainHash, type ChainedCore } from '../../src/audit/chain.js';
import { sha256Hex } from '../../src/platform/crypto/tokens.js';

/** Deterministic PRNG (mulberry32), so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SAMPLES = [
  '', 'a', 'staff.authz.allowed', '"quoted"', 'back\\slash', 'line\nbreak\ttab\r', '\u0000\u0001\u001f\u007f', 'ä ö å €',
  '\u2028\u2029', '日本語', '😀 emoji pair', '</script>', '{"data":"json inside"}', '01a210f3-8611-778b-be80-06da937e385d',
  '2026-11-25T04:25:24.753Z',
];

function randomString(next: () => number): string {
  if (next() < 0.5) return SAMPLES[Math.floor(next() * SAMPLES.length)] ?? '';
  let s = '';
  const length = Math.floor(next() * 20);
  for (let i = 0; i < length; i += 1) {
    const r = next();
    // Mostly ASCII, some control characters, Latin-1, BMP and astral (paired surrogates).
    if (r < 0.6) s += String.fromCharCode(32 + Math.floor(next() * 95));
    else if (r < 0.7) s += String.fromCharCode(Math.floor(next() * 32));
    else if (r < 0.8) s += String.fromCharCode(0x80 + Math.floor(next() * 0x180));
    else if (r < 0.9) s += String.fromCharCode(0x0800 + Math.floor(next() * 0xd000));
    else s += String.fromCodePoint(0x10000 + Math.floor(next() * 0xfffff));
  }
  return s;
}

function randomCore(next: () => number): ChainedCore {
  const nullable = (): string | null => (next() < 0.3 ? null : randomString(next));
  return {
    seq: next() < 0.1 ? Number.MAX_SAFE_INTEGER - Math.floor(next() * 10) : Math.floor(next() * 1e9),
    id: randomString(next),
    at: randomString(next),
    action: randomString(next),
    actorType: randomString(next),
    actorId: nullable(),
    orgId: nullable(),
    subjectId: nullable(),
    data: next() < 0.5 ? (canonicalize({ requestId: randomString(next), n: Math.floor(next() * 100) }) ?? '{}') : randomString(next),
    piiCommitment: nullable(),
  };
}

describe('canonicalCore (fixed-key RFC 8785)', () => {
  it('is byte-identical to canonicalize for 20,000 generated cores', () => {
    const next = prng(9);
    for (let i = 0; i < 20_000; i += 1) {
      const core = randomCore(next);
      const expected = canonicalize(core);
      expect(canonicalCore(core)).toBe(expected);
      expect(legacyChainHash(core, 'f'.repeat(64))).toBe(sha256Hex(`${expected}${'f'.repeat(64)}`));
    }
  });

  it('refuses a lone surrogate exactly as canonicalize does', () => {
    for (const bad of ['\uD800', 'x\uDC00y', 'end\uDBFF']) {
      const core: ChainedCore = { seq: 1, id: 'i', at: 'a', action: bad, actorType: 's', actorId: null, orgId: null, subjectId: null, data: '{}', piiCommitment: null };
      expect(() => canonicalize(core)).toThrow(/surrogate/i);
      expect(() => canonicalCore(core)).toThrow(/surrogate/i);
    }
  });

  it('matches canonicalize outside the fast shape (fractional seq, missing field)', () => {
    const base: ChainedCore = { seq: 1.5, id: 'i', at: 'a', action: 'x', actorType: 's', actorId: 'u', orgId: null, subjectId: null, data: '{}', piiCommitment: null };
    expect(canonicalCore(base)).toBe(canonicalize(base));
    const missing = { ...base, seq: 2, actorId: undefined } as unknown as ChainedCore;
    expect(canonicalCore(missing)).toBe(canonicalize(missing));
  });
});
