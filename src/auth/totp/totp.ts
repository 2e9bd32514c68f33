import { generateSecret, generateURI, generate, verify } from 'otplib';

/**
 * RFC 6238 TOTP — the only importer of `otplib` (v13: async `generate` and
 * `verify`, which returns the matched `timeStep`). SHA-1, 6 digits, 30 s
 * (API.md), ±1 step of drift.
 */
export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;
export const TOTP_ISSUER = 'Cleverom';

/** A new 160-bit secret in base32 (RFC 4226 §4 recommends 160 bits). */
export function newTotpSecret(): string {
  return generateSecret({ length: 20 });
}

export function otpauthUrl(secret: string, accountEmail: string): string {
  return generateURI({ issuer: TOTP_ISSUER, label: accountEmail, secret, algorithm: 'sha1', digits: TOTP_DIGITS, period: TOTP_PERIOD_SECONDS });
}

/**
 * The time step `code` matches at `now`, or null. RFC 6238 §5.2: a step at or
 * before `afterStep` (the last accepted one) is refused, so a code is never
 * accepted twice; the caller also stores the new step atomically.
 */
export async function matchTotp(secret: string, code: string, now: Date, afterStep: number | null): Promise<number | null> {
  if (!/^\d{6}$/.test(code)) return null;
  const result = await verify({
    secret,
    token: code,
    epoch: Math.floor(now.getTime() / 1000),
    // ±1 step of drift: tolerance of one period either side.
    epochTolerance: TOTP_PERIOD_SECONDS,
    ...(afterStep === null ? {} : { afterTimeStep: afterStep }),
  });
  // The functional API's result is the TOTP|HOTP union; with the TOTP strategy it carries `timeStep`.
  if (!result.valid || !('timeStep' in result)) return null;
  return result.timeStep;
}

/** The code for `secret` at `at` (authenticator side; used by tests and scripts). */
export function totpCodeAt(secret: string, at: Date): Promise<string> {
  return generate({ secret, epoch: Math.floor(at.getTime() / 1000) });
}
