import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import nodemailer, { type Transporter } from 'nodemailer';
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

export class SmtpMailer implements Mailer {
  private readonly transport: Transporter;
  constructor(
    smtpUrl: string,
    private readonly from: string,
  ) {
    this.transport = nodemailer.createTransport(smtpUrl);
  }

  async send(mail: Mail): Promise<void> {
    await this.transport.sendMail({ from: this.from, to: mail.to, subject: mail.subject, text: mail.text });
  }
}
