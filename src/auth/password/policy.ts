import { createRequire } from 'node:module';
import type { FieldError } from '../../platform/errors.js';

/**
 * Password policy of NIST SP 800-63B rev 4 §3.1.1.2: length 15..256 code
 * points after Unicode normalisation (NFKC), never truncated, checked against
 * a blocklist of common passwords, no composition rules.
 */
export const PASSWORD_MIN_LENGTH = 15;
/** Organizations that require MFA may lower the minimum to this (API.md). */
export const PASSWORD_MIN_LENGTH_WITH_MFA = 8;
export const PASSWORD_MAX_LENGTH = 256;

/** The minimum for members of `org`: lowered only while the org requires MFA and its plan has it. */
export function minimumLengthFor(org: { requireMfa: boolean; passwordMinLength: number; mfaAvailable: boolean } | null): number {
  if (!org || !org.requireMfa || !org.mfaAvailable) return PASSWORD_MIN_LENGTH;
  return Math.max(PASSWORD_MIN_LENGTH_WITH_MFA, Math.min(PASSWORD_MIN_LENGTH, org.passwordMinLength));
}

export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

let blocklist: ReadonlySet<string> | null = null;

/**
 * The 49k most common passwords shipped by `@zxcvbn-ts/language-common`
 * (its `passwords-common` dictionary, built from breach corpora), lower-cased.
 */
function commonPasswords(): ReadonlySet<string> {
  if (blocklist === null) {
    const require = createRequire(import.meta.url);
    const pkg = require('@zxcvbn-ts/language-common') as { dictionary: Record<string, string[]> };
    blocklist = new Set((pkg.dictionary['passwords-common'] ?? []).map((p) => p.toLowerCase()));
  }
  return blocklist;
}

export function blocklistSize(): number {
  return commonPasswords().size;
}

export interface PolicyInput {
  /** Normalised password. */
  password: string;
  field: string;
  minLength?: number;
  /** Context-specific words the password must not be (email, name, service name). */
  context?: readonly string[];
}

export function checkPassword(input: PolicyInput): FieldError | null {
  const length = [...input.password].length;
  const min = input.minLength ?? PASSWORD_MIN_LENGTH;
  if (length < min) return { field: input.field, message: `must be at least ${min} characters` };
  if (length > PASSWORD_MAX_LENGTH) return { field: input.field, message: `must be at most ${PASSWORD_MAX_LENGTH} characters` };
  const lowered = input.password.toLowerCase();
  if (commonPasswords().has(lowered)) return { field: input.field, message: 'is too common; choose another' };
  const context = ['cleverom', 'cleverom identity', ...(input.context ?? [])].map((c) => c.toLowerCase().trim());
  if (context.some((c) => c !== '' && (lowered === c || lowered === c.split('@')[0]))) {
    return { field: input.field, message: 'must not be your email, name or the service name' };
  }
  // A single repeated character ("aaaaaaaaaaaaaaa") is as weak as a listed password.
  if (new Set(lowered).size === 1) return { field: input.field, message: 'is too easy to guess' };
  return null;
}
