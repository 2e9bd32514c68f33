import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Transporter } from 'nodemailer';
import type { Clock } from './clock.js';
import { newId } from './ids.js';

export interface Mail {
  to: string;
  subject: string;
  text: string;
  /** A machine-readable kind (e.g. `password_reset`) for the outbox file. */
  kind: string;
}

export interface Mailer {
  send(mail: Mail): Promise<void>;
  /**
   * GDPR Art. 17: delete the copies of mail this service still holds that
   * are addressed to, or mention, any of `addresses` (an erased person's
   * addresses). Returns how many were deleted.
   */
  forget(addresses: readonly string[]): Promise<number>;
}

export interface MailLogger {
  info(obj: object, msg: string): void;
}

/**
 * Development mailer: each message becomes a JSON file in `data/outbox/`; the
 * log names the file, never the body (it carries one-time tokens).
 */
export class OutboxMailer implements Mailer {
  constructor(
    private readonly dir: string,
    private readonly clock: Clock,
    private readonly log: MailLogger,
  ) {}

  async send(mail: Mail): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = join(this.dir, `${this.clock.now().getTime()}-${newId()}.json`);
    writeFileSync(file, JSON.stringify({ ...mail, at: this.clock.now().toISOString() }, null, 2), { mode: 0o600 });
    this.log.info({ mail: { kind: mail.kind, file } }, 'email written to the outbox (SMTP_URL is unset)');
  }

  /**
   * Deletes every outbox file addressed to one of `addresses`, or whose
   * subject or text names one (the notice of an email change goes to the
   * old address and names the new one). Addresses compare case-insensitively.
   */
  async forget(addresses: readonly string[]): Promise<number> {
    const wanted = addresses.map((a) => a.trim().toLowerCase()).filter((a) => a !== '');
    if (wanted.length === 0 || !existsSync(this.dir)) return 0;
    let deleted = 0;
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith('.json')) continue;
      const file = join(this.dir, name);
      let mail: Partial<Mail>;
      try {
        mail = JSON.parse(readFileSync(file, 'utf8')) as Partial<Mail>;
      } catch {
        continue;
      }
      const to = String(mail.to ?? '').toLowerCase();
      const words = `${String(mail.subject ?? '')}\n${String(mail.text ?? '')}`.toLowerCase();
      if (wanted.some((address) => to === address || words.includes(address))) {
        rmSync(file, { force: true });
        deleted += 1;
      }
    }
    if (deleted > 0) this.log.info({ mail: { deleted } }, 'erasure: outbox mails of the person deleted');
    return deleted;
  }
}

/**
 * SMTP delivery. nodemailer (about 15 MB of resident memory) is loaded at the
 * first mail, not at start (issue 9: footprint and start-up time).
 */
export class SmtpMailer implements Mailer {
  private transport: Promise<Transporter> | null = null;
  constructor(
    private readonly smtpUrl: string,
    private readonly from: string,
  ) {}

  async send(mail: Mail): Promise<void> {
    this.transport ??= import('nodemailer').then((nodemailer) => nodemailer.default.createTransport(this.smtpUrl));
    const transport = await this.transport;
    await transport.sendMail({ from: this.from, to: mail.to, subject: mail.subject, text: mail.text });
  }

  /** Nothing is kept here: sent mail is with the relay and the recipient (docs/operations.md "Erasure"). */
  async forget(): Promise<number> {
    return 0;
  }
}
