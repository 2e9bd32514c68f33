import type { AuditEventInput, JsonValue, RequestContext } from '../audit/events.js';
import { DAY_MS, type Clock } from '../platform/clock.js';
import { hashToken, randomToken } from '../platform/crypto/tokens.js';
import { AppError, validationFailed } from '../platform/errors.js';
import { newId } from '../platform/ids.js';
import type { Mailer } from '../platform/mailer.js';
import { normalizeEmail, type User } from '../users/user.js';
import type { UserRepository } from '../users/user-repository.js';
import type { ConsentPurpose, ConsentState } from './consents.js';
import type { OrgPolicy, PrivacyRepository, TargetRef } from './privacy-repository.js';

/** Version of the export document's shape; bump it on any incompatible change. */
export const EXPORT_SCHEMA_VERSION = 1;
const EMAIL_CHANGE_TTL_MS = DAY_MS;
const EXPORT_WINDOW_MS = 60 * 60_000;
/** Waits between the attempts to scrub storage files before an erasure answers (only when another process holds a snapshot). */
const SCRUB_RETRY_MS = [25, 100, 250] as const;
/** Then, in the background: every 30 s for 10 minutes. */
const SCRUB_BACKGROUND_MS = 30_000;
const SCRUB_BACKGROUND_ATTEMPTS = 20;

/** What happened to the storage files after an erasure (for the log). */
export type ScrubReport = { kind: 'pending'; attempts: number } | { kind: 'done_later'; attempts: number } | { kind: 'failed'; attempts: number };
const RESTRICTION_LIFT_TTL_MS = 30 * DAY_MS;

/**
 * Who asks: the person themselves (`self`), or an owner/admin of their
 * organization acting as controller for a member (`org_admin`).
 */
export type Via = 'self' | 'org_admin';

export interface PrivacyRequest {
  /** The caller. */
  actor: User;
  /** The person the request is about (the caller for `self`). */
  target: User;
  context: RequestContext;
}

/** GDPR Art. 15/20 export: a versioned document; the sections come from the contributors. */
export interface ExportDocument {
  schemaVersion: number;
  generatedAt: string;
  subject: { userId: string; email: string; orgId: string | null };
  requestedBy: { userId: string; via: Via };
  [section: string]: JsonValue;
}

/**
 * Data-subject rights over every feature's data (GDPR Art. 15–18, 20, 21;
 * UK GDPR; CCPA know/delete/opt-out; VCDPA access/correct/delete/copy/opt-out),
 * self-service and by the customer organization as controller.
 * Every request is audited with the pseudonymous ids of who asked and about
 * whom; IPs and user agents go to the event's personal side row only.
 */
export class PrivacyService {
  constructor(
    private readonly deps: {
      repo: PrivacyRepository;
      users: UserRepository;
      mailer: Mailer;
      clock: Clock;
      publicUrl: URL;
      /** `EXPORTS_PER_HOUR`: exports one account may request in any hour, both routes together. */
      exportsPerHour: number;
      /** Told when the storage files could not be scrubbed before the answer, and how that ended. */
      onScrubReport?: (report: ScrubReport) => void;
      /** Told when deleting the person's outbox mail failed (the erasure itself has committed). */
      onBackgroundError?: (error: unknown, what: string) => void;
    },
  ) {}

  private via(request: PrivacyRequest): Via {
    return request.actor.id === request.target.id ? 'self' : 'org_admin';
  }

  /**
   * The event of a request. The caller's IP and user agent are personal data
   * of the caller, so they go to `pii` under the caller's id — except when
   * the record must not keep any (erasure of oneself).
   */
  private event(action: string, request: PrivacyRequest, data: { [key: string]: JsonValue } = {}): AuditEventInput {
    return {
      action,
      actor: { type: 'user', id: request.actor.id },
      orgId: request.target.orgId,
      subjectId: request.target.id,
      data: { via: this.via(request), ...data },
      pii: { userId: request.actor.id, ...request.context },
    };
  }

  /** Only an owner acts on an owner (as for role changes and removal). */
  private requireAuthorityOver(request: PrivacyRequest): void {
    if (this.via(request) === 'org_admin' && request.actor.role !== 'owner' && request.target.role === 'owner') {
      throw new AppError('forbidden', { publicDetail: 'Only an owner can do this for an owner.' });
    }
  }

  /**
   * `GET /v1/me/export`, `GET /v1/orgs/:orgId/members/:userId/export`.
   *
   * Limited per CALLER (the account asking), both routes together:
   * `exportsPerHour` (default 5) in any 60 minutes, then `429 rate_limited`
   * with `Retry-After` (OWASP ASVS 5.0 2.4.1 anti-automation; an export
   * reads everything held about a person, so it is the costliest read and
   * the richest one to repeat with a stolen session). Per caller, not per
   * person exported: an admin exporting a member does not use up the
   * member's own right of access, and a stolen admin session cannot export
   * the whole organization quickly. Counted from the caller's
   * `privacy.exported` events in the transaction that records the next one;
   * a refusal is audited as `privacy.export_rate_limited`.
   */
  async export(request: PrivacyRequest): Promise<ExportDocument> {
    const { target } = request;
    const subject = { userId: target.id, email: target.email, orgId: target.orgId };
    const now = this.deps.clock.now();
    const outcome = await this.deps.repo.export(subject, this.event('privacy.exported', request, { schemaVersion: EXPORT_SCHEMA_VERSION }), {
      max: this.deps.exportsPerHour,
      windowMs: EXPORT_WINDOW_MS,
      at: now,
      refusal: this.event('privacy.export_rate_limited', request, { limit: this.deps.exportsPerHour, windowMinutes: EXPORT_WINDOW_MS / 60_000 }),
    });
    if (outcome.kind === 'rate_limited') {
      const seconds = Math.max(1, Math.ceil((outcome.retryAt.getTime() - now.getTime()) / 1000));
      throw new AppError('rate_limited', {
        publicDetail: `At most ${this.deps.exportsPerHour} exports an hour.`,
        extra: { retryAfter: seconds },
        headers: { 'retry-after': String(seconds) },
      });
    }
    const sections = outcome.sections;
    return {
      schemaVersion: EXPORT_SCHEMA_VERSION,
      generatedAt: this.deps.clock.now().toISOString(),
      subject,
      requestedBy: { userId: request.actor.id, via: this.via(request) },
      ...sections,
    };
  }

  /**
   * `POST /v1/me/erasure`, `POST /v1/orgs/:orgId/members/:userId/erasure`
   * (GDPR Art. 17): every contributor's data, then the account. The last
   * owner of an organization must hand ownership over first (`409`) — or,
   * when nobody else is in it, ask for the organization to go too
   * (`delete_if_sole_member`).
   */
  async erase(
    request: PrivacyRequest,
    orgPolicy: OrgPolicy,
    /** Recorded as this action (member removal is an erasure by the controller). */
    as: { action: string; data: { [key: string]: JsonValue } } = { action: 'privacy.erased', data: {} },
  ): Promise<{ organizationDeleted: boolean }> {
    this.requireAuthorityOver(request);
    const via = this.via(request);
    const { pii, ...core } = this.event(as.action, request, as.data);
    // Erasing oneself: the record of it keeps no IP or user agent of the erased person.
    const event: AuditEventInput = via === 'self' ? core : { ...core, pii };
    const outcome = await this.deps.repo.erase(targetRef(request.target), orgPolicy, event);
    if (outcome.kind === 'not_found') throw new AppError('not_found');
    if (outcome.kind === 'last_owner') {
      throw new AppError('conflict', {
        publicDetail: outcome.soleMember
          ? 'You are the only member of your organization. To erase your account and delete the organization with it, use POST /v1/me/erasure?deleteOrganization=true.'
          : 'The last owner of an organization cannot be erased. Make another member owner first (PATCH /v1/orgs/:orgId/members/:userId {"role":"owner"}).',
      });
    }
    // GDPR Art. 17: no copy may outlive the answer — in the database's own files, or in the outbox.
    await this.scrubStorage();
    try {
      await this.deps.mailer.forget(outcome.addresses);
    } catch (error) {
      this.deps.onBackgroundError?.(error, 'deleting the outbox mail of an erased person');
    }
    return { organizationDeleted: outcome.organizationDeleted };
  }

  /**
   * After the erasure has committed, older page images of the erased rows
   * may still be in the storage's files (SQLite's WAL). They are scrubbed
   * before the erasure answers; only a reader in another process (a CLI
   * verb) can prevent it. Then a few quick retries, and if still prevented,
   * the answer goes out and retries continue in the background (every 30 s
   * for 10 minutes), each outcome reported; `journal_size_limit=0` removes
   * the frames at the WAL's next restart in any case.
   */
  private async scrubStorage(): Promise<void> {
    if (await this.deps.repo.scrubAfterErasure()) return;
    for (const wait of SCRUB_RETRY_MS) {
      await new Promise((resolve) => setTimeout(resolve, wait));
      if (await this.deps.repo.scrubAfterErasure()) return;
    }
    let attempts = 1 + SCRUB_RETRY_MS.length;
    this.deps.onScrubReport?.({ kind: 'pending', attempts });
    const retry = (): void => {
      attempts += 1;
      void this.deps.repo.scrubAfterErasure().then(
        (done) => {
          if (done) this.deps.onScrubReport?.({ kind: 'done_later', attempts });
          else if (attempts < 1 + SCRUB_RETRY_MS.length + SCRUB_BACKGROUND_ATTEMPTS) setTimeout(retry, SCRUB_BACKGROUND_MS).unref();
          else this.deps.onScrubReport?.({ kind: 'failed', attempts });
        },
        (error: unknown) => this.deps.onBackgroundError?.(error, 'scrubbing storage after an erasure'),
      );
    };
    setTimeout(retry, SCRUB_BACKGROUND_MS).unref();
  }

  /**
   * Restriction of processing (GDPR Art. 18): a restricted account cannot log
   * in, its sessions are revoked, staff console reads skip it, and its data
   * stays as it is until lifted. A person who restricts their own account
   * receives a single-use link to lift it (30 days); otherwise an owner/admin
   * of their organization lifts it.
   */
  async setRestriction(request: PrivacyRequest, restricted: boolean): Promise<{ restricted: boolean; changed: boolean }> {
    this.requireAuthorityOver(request);
    const now = this.deps.clock.now();
    const selfRestriction = restricted && this.via(request) === 'self';
    const token = selfRestriction ? randomToken(32) : null;
    const outcome = await this.deps.repo.setRestriction({
      target: targetRef(request.target),
      restricted,
      liftToken: token
        ? { id: newId(), userId: request.target.id, tokenHash: hashToken(token), createdAt: now, expiresAt: new Date(now.getTime() + RESTRICTION_LIFT_TTL_MS) }
        : null,
      at: now,
      event: this.event(restricted ? 'privacy.restricted' : 'privacy.restriction_lifted', request),
    });
    if (outcome.kind === 'not_found') throw new AppError('not_found');
    if (token) {
      await this.deps.mailer.send({
        kind: 'restriction_lift',
        to: request.target.email,
        subject: 'Your Cleverom account is restricted',
        text:
          'As you asked, processing of your Cleverom account is restricted: you cannot log in and your data is kept unchanged.\n\n' +
          `To lift the restriction, send this token to POST /v1/restriction/lift within 30 days, or ask an administrator of your organization:\n\nToken: ${token}\n`,
      });
    }
    return { restricted, changed: outcome.changed };
  }

  /** `POST /v1/restriction/lift {token}`: the person lifts a restriction they asked for. */
  async liftWithToken(token: string, context: RequestContext): Promise<void> {
    const userId = await this.deps.repo.liftWithToken(hashToken(token), this.deps.clock.now(), (id, orgId) => ({
      action: 'privacy.restriction_lifted',
      actor: { type: 'user', id },
      orgId,
      subjectId: id,
      data: { via: 'self', method: 'token' },
      pii: { userId: id, ...context },
    }));
    if (userId === null) throw validationFailed([{ field: 'token', message: 'is invalid, used or expired' }]);
  }

  /**
   * `PATCH /v1/me` (GDPR Art. 16): name and phone change at once; a new
   * email is only requested here — a single-use link goes to the new
   * address, a notice to the old one, and `confirmEmail` switches it.
   */
  async rectify(user: User, changes: { name?: string; phone?: string | null; email?: string }, context: RequestContext): Promise<{ user: User; pendingEmail: string | null }> {
    const request: PrivacyRequest = { actor: user, target: user, context };
    const newEmail = changes.email === undefined ? null : normalizeEmail(changes.email);
    // Asking for the current address again changes nothing.
    const email = newEmail !== null && newEmail !== user.email ? { address: newEmail, token: randomToken(32) } : null;
    const fields = [...(changes.name !== undefined ? ['name'] : []), ...(changes.phone !== undefined ? ['phone'] : [])];
    const now = this.deps.clock.now();
    const outcome = await this.deps.repo.rectify({
      userId: user.id,
      at: now,
      fields:
        fields.length === 0
          ? null
          : {
              changes: { ...(changes.name !== undefined ? { name: changes.name } : {}), ...(changes.phone !== undefined ? { phone: changes.phone } : {}) },
              event: this.event('privacy.rectified', request, { fields }),
            },
      emailChange:
        email === null
          ? null
          : {
              token: { id: newId(), userId: user.id, tokenHash: hashToken(email.token), newEmail: email.address, createdAt: now, expiresAt: new Date(now.getTime() + EMAIL_CHANGE_TTL_MS) },
              event: this.event('privacy.email_change_requested', request),
            },
    });
    if (outcome === 'email_taken') throw new AppError('conflict', { publicDetail: 'An account with this email already exists.' });
    if (email !== null) await this.sendEmailChangeMails(user, email.address, email.token);
    const updated = await this.deps.users.byId(user.id);
    if (!updated) throw new AppError('not_found');
    return { user: updated, pendingEmail: email?.address ?? null };
  }

  private async sendEmailChangeMails(user: User, newEmail: string, token: string): Promise<void> {
    const link = new URL('/account/email/confirm', this.deps.publicUrl);
    link.searchParams.set('token', token);
    await this.deps.mailer.send({
      kind: 'email_change',
      to: newEmail,
      subject: 'Confirm your new Cleverom email address',
      text:
        'Someone asked to use this address for a Cleverom account.\n\n' +
        `To confirm, open this link within 24 hours while logged in to that account (or send the token to POST /v1/me/email/confirm):\n${link.href}\n\nToken: ${token}\n\n` +
        'If this was not you, ignore this email; nothing changes.',
    });
    await this.deps.mailer.send({
      kind: 'email_change_notice',
      to: user.email,
      subject: 'Your Cleverom email address is about to change',
      text:
        `Someone asked to change the email address of your Cleverom account to ${newEmail}. ` +
        'It changes only once the new address confirms.\n\n' +
        'If this was not you, change your password now and tell your organization administrator.',
    });
  }

  /** `POST /v1/me/email/confirm {token}`: the logged-in person confirms their new address. */
  async confirmEmail(user: User, token: string, context: RequestContext): Promise<User> {
    const outcome = await this.deps.repo.confirmEmailChange({
      userId: user.id,
      tokenHash: hashToken(token),
      at: this.deps.clock.now(),
      event: this.event('privacy.email_changed', { actor: user, target: user, context }),
    });
    if (outcome.kind === 'invalid_token') throw validationFailed([{ field: 'token', message: 'is invalid, used or expired' }]);
    if (outcome.kind === 'email_taken') throw new AppError('conflict', { publicDetail: 'An account with this email already exists.' });
    const updated = await this.deps.users.byId(user.id);
    if (!updated) throw new AppError('not_found');
    return updated;
  }

  /** `GET /v1/me/consents`. */
  consents(user: User, context: RequestContext): Promise<ConsentState> {
    return this.deps.repo.readConsents(user.id, this.event('privacy.consents_viewed', { actor: user, target: user, context }));
  }

  /** `PUT /v1/me/consents`: each change is a history row with its time and source. */
  async setConsents(user: User, choices: Partial<Record<ConsentPurpose, boolean>>, context: RequestContext): Promise<ConsentState> {
    const { state } = await this.deps.repo.changeConsents({
      userId: user.id,
      choices,
      source: 'api',
      at: this.deps.clock.now(),
      newId,
      event: this.event('privacy.consents_changed', { actor: user, target: user, context }, { source: 'api' }),
    });
    return state;
  }
}

/** The person as the repository re-reads them: pinned to their organization, if any. */
function targetRef(user: User): TargetRef {
  return user.orgId === null ? { userId: user.id } : { userId: user.id, orgId: user.orgId };
}
