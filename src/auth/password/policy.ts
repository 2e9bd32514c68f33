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
  /**
   * Context-specific words (NIST SP 800-63B-4 §3.1.1.2): the person's email
   * and name, their organization's name, where known. The service name is
   * always added. Emails are split into the local part and domain labels.
   */
  context?: readonly string[];
}

/** The service's own name, always a context word. */
const SERVICE_WORDS = ['cleverom'] as const;
/**
 * Issue 23 item 4: at least this many characters (not counting spaces) must
 * be left once context words, years, keyboard walks, sequences and
 * repetitions are taken out; otherwise the password is mostly guessable
 * parts. 8 is the smallest minimum length an organization may set, so a
 * password at that minimum must consist only of characters of its own.
 */
export const PASSWORD_OWN_CHARACTERS_MIN = 8;
/** Context words shorter than this are ignored (too common inside real words). */
const CONTEXT_WORD_MIN = 3;

/**
 * Keyboard rows and columns (QWERTY, QWERTZ, AZERTY) and the alphabet and
 * digits, each read both ways: a run of the password inside one of them is a
 * walk or a sequence. `qwertyuiopasdfgh` is one run of the first.
 */
const WALKS: readonly string[] = (() => {
  const forward = [
    'qwertyuiopasdfghjklzxcvbnm',
    'qwertzuiopasdfghjklyxcvbnm',
    'azertyuiopqsdfghjklmwxcvbn',
    'qazwsxedcrfvtgbyhnujmikolp',
    '1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/',
    'abcdefghijklmnopqrstuvwxyz',
    '01234567890',
    '1234567890-=',
    '!@#$%^&*()_+',
  ];
  return [...forward, ...forward.map((w) => [...w].reverse().join(''))];
})();

export function checkPassword(input: PolicyInput): FieldError | null {
  const length = [...input.password].length;
  const min = input.minLength ?? PASSWORD_MIN_LENGTH;
  if (length < min) return { field: input.field, message: `must be at least ${min} characters` };
  if (length > PASSWORD_MAX_LENGTH) return { field: input.field, message: `must be at most ${PASSWORD_MAX_LENGTH} characters` };
  const lowered = input.password.toLowerCase();
  if (commonPasswords().has(lowered)) return { field: input.field, message: 'is too common; choose another' };
  const context = ['cleverom', 'cleverom identity', ...(input.context ?? [])].map((c) => c.normalize('NFKC').toLowerCase().trim());
  if (context.some((c) => c !== '' && (lowered === c || lowered === c.split('@')[0]))) {
    return { field: input.field, message: 'must not be your email, name or the service name' };
  }
  const guessable = guessableParts(lowered, contextWords(input.context ?? []));
  if (guessable.ownCharacters < PASSWORD_OWN_CHARACTERS_MIN) {
    const message =
      guessable.fromContext >= guessable.fromPatterns
        ? 'is too easy to guess: it is mostly your name, email, organization name or "Cleverom", with dates or digits; add words of your own'
        : 'is too easy to guess: it is mostly a keyboard pattern, a sequence or repeated characters; add words of your own';
    return { field: input.field, message };
  }
  return null;
}

/**
 * The context words of NIST SP 800-63B-4 §3.1.1.2 from the person's details:
 * each whole value (separators removed too), its words, and for an email the
 * local part and the domain labels but the top-level one. Longest first, so
 * a longer word is taken out before the shorter ones inside it.
 */
export function contextWords(context: readonly string[]): string[] {
  const words = new Set<string>(SERVICE_WORDS);
  const add = (value: string): void => {
    const parts = value.split(/[^\p{L}\p{N}]+/u).filter((p) => p !== '');
    for (const candidate of [value, parts.join(''), ...parts]) {
      if ([...candidate].length >= CONTEXT_WORD_MIN) words.add(candidate);
    }
  };
  for (const raw of context) {
    const value = raw.normalize('NFKC').toLowerCase().trim();
    const at = value.lastIndexOf('@');
    if (at < 0) {
      add(value);
      continue;
    }
    add(value.slice(0, at));
    for (const label of value.slice(at + 1).split('.').slice(0, -1)) add(label);
  }
  return [...words].sort((a, b) => [...b].length - [...a].length);
}

/**
 * What is left of `password` (lower case) after taking out, in this order:
 * the context words; years (19xx, 20xx); blocks repeated back to back (one
 * copy is kept: "horsehorse" → "horse"); runs of one character (3 or more);
 * keyboard walks and alphabet sequences of 4 or more, digit sequences of 3
 * or more (`WALKS`). Spaces are not counted. Digits and punctuation that
 * are none of these count as the password's own: random passwords from a
 * password manager are full of them.
 */
function guessableParts(password: string, words: readonly string[]): { ownCharacters: number; fromContext: number; fromPatterns: number } {
  const count = (s: string): number => [...s.replace(/\s/gu, '')].length;
  let rest = password;
  for (const word of words) rest = rest.split(word).join(' ');
  rest = rest.replace(/(?<!\d)(?:19|20)\d{2}(?!\d)/gu, ' ');
  const fromContext = count(password) - count(rest);
  const afterContext = count(rest);
  rest = rest.replace(/(.{2,}?)\1+/gsu, '$1');
  rest = removeRuns(rest);
  const ownCharacters = count(rest);
  return { ownCharacters, fromContext, fromPatterns: afterContext - ownCharacters };
}

/** Take out runs of one repeated character and walks or sequences (see `WALKS`). */
function removeRuns(text: string): string {
  const chars = [...text];
  let out = '';
  let i = 0;
  while (i < chars.length) {
    const run = Math.max(repeatAt(chars, i), walkAt(chars, i));
    if (run > 0) {
      out += ' ';
      i += run;
    } else {
      out += chars[i] ?? '';
      i += 1;
    }
  }
  return out;
}

function repeatAt(chars: readonly string[], i: number): number {
  let j = i;
  while (j < chars.length && chars[j] === chars[i]) j += 1;
  return j - i >= 3 ? j - i : 0;
}

function walkAt(chars: readonly string[], i: number): number {
  let best = 0;
  for (const walk of WALKS) {
    let k = 1;
    // Any piece of a walk is a walk, so the run only grows while it stays one.
    while (i + k < chars.length && walk.includes(chars.slice(i, i + k + 1).join(''))) k += 1;
    if (k > best && walk.includes(chars[i] ?? '\u0000')) best = k;
  }
  const piece = chars.slice(i, i + best).join('');
  const minimum = /^\d+$/.test(piece) ? 3 : 4;
  return best >= minimum ? best : 0;
}
