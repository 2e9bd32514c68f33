import { randomBytes } from 'node:crypto';
import type { AuditEventInput, RequestContext } from '../../audit/events.js';
import type { Clock } from '../../platform/clock.js';
import type { Mailer } from '../../platform/mailer.js';
import { SECOND } from '../../platform/clock.js';
import type { SecretBox } from '../../platform/crypto/secret-box.js';
import { hashToken, randomToken, sha256Hex } from '../../platform/crypto/tokens.js';
import { AppError } from '../../platform/errors.js';
import { newId } from '../../platform/ids.js';
import type { User } from '../../users/user.js';
import type { UserRepository } from '../../users/user-repository.js';
import { CHALLENGE_TTL_MS, challengeUsable } from '../challenge/challenge.js';
import type { CodeVerifier, LoginResult, LoginStep } from '../password/password-service.js';
import type { SessionService } from '../session/session-service.js';
import type { NewSession, Session } from '../session/session.js';
import { matchTotp, newTotpSecret, otpauthUrl } from './totp.js';
import type { Proof, RecoveryCodeRecord, TotpFactor, TotpRepository } from './totp-repository.js';

/** SECURITY.md: 10 recovery codes of ≥ 60 bits; ours carry 80 (16 base32 characters). */
export const RECOVERY_CODE_COUNT = 10;
/** SECURITY.md: 5 wrong codes → 30 s backoff. */
const BACKOFF_EVERY = 5;
const BACKOFF_MS = 30 * SECOND;
const RECOVERY_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
/**
 * NIST SP 800-63B-4 §3.2.2 (SECURITY.md "TOTP"): at most 100 consecutive
 * failed attempts per authenticator. At the 100th wrong code in a row —
 * across challenges and reauthentications — TOTP codes stop being accepted
 * (even the right one) until the person signs in with a recovery code or an
 * org owner/admin resets the factor. The counter is the factor's own
 * `failures`, incremented in SQL and reset by every accepted code.
 */
export const TOTP_FAILURE_CEILING = 100;
const CODES_DISABLED_DETAIL =
  'Authentication codes are turned off for this account after too many wrong codes. Sign in with a recovery code, or ask an administrator of your organization to reset two-factor authentication.';

export interface Enrolment {
  secret: string;
  otpauthUrl: string;
  qrSvg: string;
}

export type SecondFactorInput = { code: string } | { recoveryCode: string };

/** Recovery codes are compared in one form: upper case, without separators. */
export function normalizeRecoveryCode(code: string): string {
  return code.toUpperCase().replace(/[^A-Z0-9]/g, '');
}

/** AES-GCM additional data binding a sealed TOTP secret to its user. */
export function totpSealContext(userId: string): string {
  return `totp:${userId}`;
}

function newRecoveryCode(): string {
  const bytes = randomBytes(16);
  let out = '';
  for (let i = 0; i < 16; i += 1) out += RECOVERY_ALPHABET[(bytes[i] ?? 0) % 32];
  return out.match(/.{4}/g)?.join('-') ?? out;
}

function recoveryCodeHash(userId: string, code: string): string {
  return sha256Hex(`recovery:${userId}:${normalizeRecoveryCode(code)}`);
}

/**
 * TOTP two-factor authentication (RFC 6238) with recovery codes: enrolment,
 * the MFA login step over a pending challenge, reauthentication by code,
 * and management. Secrets are sealed at rest; codes are single-use.
 */
export class TotpService implements LoginStep, CodeVerifier {
  constructor(
    private readonly deps: {
      repo: TotpRepository;
      users: UserRepository;
      sessions: SessionService;
      secretBox: SecretBox;
      clock: Clock;
      mailer: Mailer;
      /** Failures of work done after the answer (the "codes turned off" email). */
      onBackgroundError?: (error: unknown, what: string) => void;
    },
  ) {}

  private sealContext(userId: string): string {
    return totpSealContext(userId);
  }

  private secretOf(factor: TotpFactor): string {
    return this.deps.secretBox.open(factor.secretSealed, this.sealContext(factor.userId));
  }

  private event(action: string, user: User, context: RequestContext, data: AuditEventInput['data'] = {}, actor?: User): AuditEventInput {
    return {
      action,
      actor: { type: 'user', id: (actor ?? user).id },
      orgId: user.orgId,
      subjectId: user.id,
      data,
      pii: { userId: user.id, ...context },
    };
  }

  async status(user: User): Promise<{ totp: { status: 'none' | 'pending' | 'confirmed'; confirmedAt: string | null }; recoveryCodesRemaining: number }> {
    const factor = await this.deps.repo.factor(user.id);
    return {
      totp: { status: factor?.status ?? 'none', confirmedAt: factor?.confirmedAt?.toISOString() ?? null },
      recoveryCodesRemaining: factor?.status === 'confirmed' ? await this.deps.repo.unusedRecoveryCodes(user.id) : 0,
    };
  }

  async hasConfirmedFactor(userId: string): Promise<boolean> {
    return (await this.deps.repo.factor(userId))?.status === 'confirmed';
  }

  /** `POST /v1/me/mfa/totp`: a new pending secret (a confirmed factor must be removed first). */
  async enrol(user: User, context: RequestContext): Promise<Enrolment> {
    const existing = await this.deps.repo.factor(user.id);
    if (existing?.status === 'confirmed') {
      throw new AppError('conflict', { publicDetail: 'Two-factor authentication is already on. Remove it first to enrol a new device.' });
    }
    const secret = newTotpSecret();
    const sealed = this.deps.secretBox.seal(secret, this.sealContext(user.id));
    await this.deps.repo.savePending(user.id, sealed, this.deps.clock.now(), this.event('mfa.totp.enrolment_started', user, context));
    const url = otpauthUrl(secret, user.email);
    // qrcode (about 10 MB resident) is loaded at the first enrolment, not at start (issue 9).
    const { default: QRCode } = await import('qrcode');
    const qrSvg = await QRCode.toString(url, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
    return { secret, otpauthUrl: url, qrSvg };
  }

  /**
   * `POST /v1/me/mfa/totp/confirm`: a valid code activates the factor, returns
   * 10 recovery codes once, and moves the session to AAL2 with a new token
   * (ASVS 7.2.4: new token at every AAL change).
   */
  async confirm(user: User, session: Session, code: string, context: RequestContext): Promise<{ recoveryCodes: string[]; session: NewSession }> {
    const factor = await this.deps.repo.factor(user.id);
    if (factor?.status !== 'pending') {
      throw new AppError('conflict', { publicDetail: 'There is no pending enrolment. Start one with POST /v1/me/mfa/totp.' });
    }
    const now = this.deps.clock.now();
    const step = await matchTotp(this.secretOf(factor), code, now, null);
    if (step === null) {
      await this.deps.repo.recordFailure({ userId: user.id, challengeId: null, backoff: null, ceiling: null, event: this.event('mfa.totp.confirm_failed', user, context) });
      throw new AppError('invalid_code');
    }
    const { plain, records } = this.newRecoveryCodes(user.id);
    const next = this.deps.sessions.mint({ userId: user.id, aal: 2, authMethod: session.authMethod, context, staff: user.orgId === null });
    const ok = await this.deps.repo.confirm({
      userId: user.id,
      step,
      at: now,
      codes: records,
      rotate: { oldSessionId: session.id, next },
      event: this.event('mfa.totp.confirmed', user, context, { sessionId: next.session.id }),
    });
    if (!ok) throw new AppError('conflict', { publicDetail: 'The enrolment was already confirmed.' });
    return { recoveryCodes: plain, session: next };
  }

  private newRecoveryCodes(userId: string): { plain: string[]; records: RecoveryCodeRecord[] } {
    const plain = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    return { plain, records: plain.map((code) => ({ id: newId(), codeHash: recoveryCodeHash(userId, code) })) };
  }

  /** LoginStep: a confirmed factor always needs the second step, whatever the plan (downgrades never remove it). */
  async afterPassword(input: { user: User; context: RequestContext }): Promise<LoginResult | null> {
    if (!(await this.hasConfirmedFactor(input.user.id))) return null;
    const now = this.deps.clock.now();
    const pendingToken = randomToken(32);
    const challengeId = newId();
    const expiresAt = new Date(now.getTime() + CHALLENGE_TTL_MS);
    await this.deps.repo.createChallenge({ id: challengeId, userId: input.user.id, tokenHash: hashToken(pendingToken), createdAt: now, expiresAt });
    return { kind: 'mfa_required', challengeId, pendingToken, expiresAt };
  }

  /** Backoff after repeated wrong codes (SECURITY.md: 5 failures → 30 s). */
  private refuseWhileLocked(factor: TotpFactor): void {
    const ms = (factor.lockedUntil?.getTime() ?? 0) - this.deps.clock.now().getTime();
    if (ms > 0) {
      const retryAfter = Math.ceil(ms / 1000);
      throw new AppError('account_locked', { extra: { retryAfter }, headers: { 'retry-after': String(retryAfter) } });
    }
  }

  /** Turn a submitted code into a proof, or null when wrong. */
  private async proofFor(factor: TotpFactor, input: SecondFactorInput): Promise<Proof | null> {
    if ('code' in input) {
      const step = await matchTotp(this.secretOf(factor), input.code, this.deps.clock.now(), factor.lastUsedStep);
      return step === null ? null : { kind: 'totp', step };
    }
    const normalized = normalizeRecoveryCode(input.recoveryCode);
    if (normalized.length !== 16) return null;
    return { kind: 'recovery', codeHash: recoveryCodeHash(factor.userId, normalized) };
  }

  /** TOTP codes of a factor past the ceiling are refused, right or wrong (recovery codes still work). */
  private refuseCodesWhileDisabled(factor: TotpFactor, input: SecondFactorInput): void {
    if ('code' in input && factor.failures >= TOTP_FAILURE_CEILING) {
      throw new AppError('invalid_code', { publicDetail: CODES_DISABLED_DETAIL });
    }
  }

  private async fail(user: User, challengeId: string | null, context: RequestContext, action: string): Promise<never> {
    const backoff = { every: BACKOFF_EVERY, until: new Date(this.deps.clock.now().getTime() + BACKOFF_MS) };
    const ceiling = {
      at: TOTP_FAILURE_CEILING,
      event: this.event('mfa.totp.codes_disabled', user, context, { consecutiveFailures: TOTP_FAILURE_CEILING }),
    };
    const outcome = await this.deps.repo.recordFailure({ userId: user.id, challengeId, backoff, ceiling, event: this.event(action, user, context) });
    if (outcome === 'ceiling_reached') {
      this.mailCodesDisabled(user);
      throw new AppError('invalid_code', { publicDetail: CODES_DISABLED_DETAIL });
    }
    throw new AppError('invalid_code');
  }

  /** Tell the person their codes were turned off (not awaited: the answer does not wait for SMTP; a failed send is logged). */
  private mailCodesDisabled(user: User): void {
    this.deps.mailer
      .send({
        kind: 'mfa_codes_disabled',
        to: user.email,
        subject: 'Two-factor codes for your Cleverom account were turned off',
        text:
          `Someone entered ${TOTP_FAILURE_CEILING} wrong two-factor codes in a row for your Cleverom account, so codes from your authenticator app are no longer accepted.\n\n` +
          'To turn them back on, sign in with one of your recovery codes, or ask an administrator of your organization to reset your two-factor authentication.\n\n' +
          'Those attempts came after a correct password: if they were not yours, change your password now.',
      })
      .catch((error: unknown) => this.deps.onBackgroundError?.(error, 'two-factor codes disabled email'));
  }

  /** `POST /v1/login/mfa`: complete a pending login with a code or a recovery code. */
  async completeLogin(pendingToken: string | undefined, input: SecondFactorInput, context: RequestContext): Promise<{ user: User; session: NewSession }> {
    const challenge = pendingToken ? await this.deps.repo.challengeByTokenHash(hashToken(pendingToken)) : null;
    const now = this.deps.clock.now();
    if (!challenge || !challengeUsable(challenge, now)) throw new AppError('invalid_code', { publicDetail: 'The sign-in attempt has expired. Log in again.' });
    const user = await this.deps.users.byId(challenge.userId);
    const factor = await this.deps.repo.factor(challenge.userId);
    if (!user || factor?.status !== 'confirmed') throw new AppError('invalid_code');
    this.refuseCodesWhileDisabled(factor, input);
    this.refuseWhileLocked(factor);
    const proof = await this.proofFor(factor, input);
    if (!proof) return this.fail(user, challenge.id, context, 'auth.mfa.failed');
    const session = this.deps.sessions.mint({ userId: user.id, aal: 2, authMethod: 'password', context, staff: user.orgId === null });
    const events: AuditEventInput[] = [
      ...(proof.kind === 'recovery' ? [this.event('mfa.recovery_code.used', user, context)] : []),
      // A recovery code resets the counter (spend), which turns codes back on.
      ...(proof.kind === 'recovery' && factor.failures >= TOTP_FAILURE_CEILING ? [this.event('mfa.totp.codes_reenabled', user, context, { by: 'recovery_code' })] : []),
      this.event('auth.login.succeeded', user, context, { sessionId: session.session.id, aal: 2, method: 'password', secondFactor: proof.kind }),
    ];
    const ok = await this.deps.repo.completeChallenge({ challengeId: challenge.id, userId: user.id, proof, session, at: now, events });
    // Replayed step, used recovery code or a concurrent submission that lost the race.
    if (!ok) return this.fail(user, challenge.id, context, 'auth.mfa.failed');
    return { user, session };
  }

  /** CodeVerifier (reauthentication, disabling): a current code, spent once. */
  async verifyCode(user: User, code: string, context: RequestContext): Promise<void> {
    const factor = await this.deps.repo.factor(user.id);
    if (factor?.status !== 'confirmed') throw new AppError('invalid_code');
    this.refuseCodesWhileDisabled(factor, { code });
    this.refuseWhileLocked(factor);
    const proof = await this.proofFor(factor, { code });
    if (!proof) return this.fail(user, null, context, 'mfa.code.failed');
    const ok = await this.deps.repo.spendProof(user.id, proof, this.deps.clock.now(), this.event('mfa.code.verified', user, context));
    if (!ok) return this.fail(user, null, context, 'mfa.code.failed');
  }

  /** `DELETE /v1/me/mfa/totp`: needs a fresh session (route) and a current code. */
  async disable(user: User, code: string, context: RequestContext): Promise<void> {
    await this.verifyCode(user, code, context);
    await this.deps.repo.removeFactor(user.id, this.event('mfa.totp.disabled', user, context));
  }

  /** `POST /v1/me/mfa/recovery-codes`: a new set; the old ones stop working. */
  async regenerateRecoveryCodes(user: User, context: RequestContext): Promise<string[]> {
    if (!(await this.hasConfirmedFactor(user.id))) {
      throw new AppError('conflict', { publicDetail: 'Turn on two-factor authentication first.' });
    }
    const { plain, records } = this.newRecoveryCodes(user.id);
    await this.deps.repo.replaceRecoveryCodes(user.id, records, this.deps.clock.now(), this.event('mfa.recovery_codes.regenerated', user, context));
    return plain;
  }

  /** An org owner/admin resets a member's factor (lost device). */
  async resetByAdmin(admin: User, member: User, context: RequestContext): Promise<void> {
    // Only an owner acts on an owner (as for roles, removal and erasure).
    if (member.role === 'owner' && admin.role !== 'owner') throw new AppError('forbidden', { publicDetail: "Only an owner can reset an owner's second factor." });
    const removed = await this.deps.repo.removeFactor(member.id, this.event('mfa.totp.reset', member, context, { by: admin.id }, admin));
    if (!removed) throw new AppError('not_found', { publicDetail: 'This member has no second factor.' });
  }
}
