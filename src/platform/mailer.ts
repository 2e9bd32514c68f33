import { mkdirSync, writeFileSync } from 'node:fs';
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
}
