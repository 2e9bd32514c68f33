import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyServerOptions, LightMyRequestResponse } from 'fastify';
import { buildApp, type Services } from '../../src/app.js';
import { loadConfig } from '../../src/config/load-config.js';
import { ManualClock } from '../../src/platform/clock.js';
import type { DnsResolver } from '../../src/platform/dns.js';

export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const PUBLIC_ORIGIN = 'http://localhost:3000';
export const GOOD_PASSWORD = 'correct horse battery staple';

export interface SentMail {
  kind: string;
  to: string;
  subject: string;
  text: string;
}

export interface TestApp {
  app: FastifyInstance;
  services: Services;
  clock: ManualClock;
  dir: string;
  databaseFile: string;
  /** Emails written by the real development mailer to `<data>/outbox`, oldest first. */
  outbox(): SentMail[];
  close(): Promise<void>;
}

/**
 * The real app on a fresh SQLite file with the real migrations, a manual
 * clock and the development outbox mailer. Nothing of ours is mocked.
 */
export async function buildTestApp(
  options: {
    env?: Record<string, string>;
    clock?: ManualClock;
    dnsResolver?: DnsResolver;
    logger?: FastifyServerOptions['logger'];
    /** Prepare the database file before the app opens it (e.g. a database from before a migration). */
    beforeStart?: (databaseFile: string) => void;
  } = {},
): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'cleverom-test-'));
  const databaseFile = join(dir, 'test.db');
  options.beforeStart?.(databaseFile);
  const clock = options.clock ?? new ManualClock();
  const config = loadConfig(
    {
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      DATABASE_URL: `file:${databaseFile}`,
      SECRETS_KEY: randomBytes(32).toString('base64'),
      PUBLIC_URL: PUBLIC_ORIGIN,
      RATE_LIMIT_PER_IP_PER_MINUTE: '10000',
      ...options.env,
    },
    PROJECT_ROOT,
  );
  const { app, services } = await buildApp(config, {
    clock,
    ...(options.dnsResolver ? { dnsResolver: options.dnsResolver } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  await app.ready();
  return {
    app,
    services,
    clock,
    dir,
    databaseFile,
    outbox: () => {
      const box = join(dir, 'outbox');
      if (!existsSync(box)) return [];
      return readdirSync(box)
        .sort()
        .map((f) => JSON.parse(readFileSync(join(box, f), 'utf8')) as SentMail);
    },
    close: async () => {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The session cookie value from a response's `set-cookie`. */
export function sessionCookie(response: LightMyRequestResponse): string {
  const cookie = response.cookies.find((c) => c.name === 'cleverom_session' || c.name === '__Host-cleverom_session');
  if (!cookie?.value) throw new Error(`no session cookie in response ${response.statusCode}: ${response.body}`);
  return cookie.value;
}

let counter = 0;
export function uniqueEmail(prefix = 'user'): string {
  counter += 1;
  return `${prefix}-${counter}-${randomBytes(3).toString('hex')}@example.com`;
}

export interface SignedUp {
  token: string;
  userId: string;
  orgId: string;
  email: string;
  password: string;
}

/** Sign up a new organization owner through the API. */
export async function signup(app: FastifyInstance, overrides: Partial<{ email: string; password: string; orgName: string; name: string }> = {}): Promise<SignedUp> {
  const email = overrides.email ?? uniqueEmail('owner');
  const password = overrides.password ?? GOOD_PASSWORD;
  const response = await app.inject({
    method: 'POST',
    url: '/v1/signup',
    payload: { orgName: overrides.orgName ?? 'Acme Oy', name: overrides.name ?? 'Ann Owner', email, password, ageConfirmed: true },
  });
  if (response.statusCode !== 201) throw new Error(`signup failed: ${response.statusCode} ${response.body}`);
  const body = response.json<{ user: { id: string }; organization: { id: string } }>();
  return { token: sessionCookie(response), userId: body.user.id, orgId: body.organization.id, email, password };
}

/** Log in through the API; returns the session token. */
export async function login(app: FastifyInstance, email: string, password: string = GOOD_PASSWORD): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/v1/login', payload: { email, password } });
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`);
  return sessionCookie(response);
}

/** Cookie-authenticated request headers, with the Origin a browser would send. */
export function asUser(token: string): { cookies: Record<string, string>; headers: Record<string, string> } {
  return { cookies: { cleverom_session: token }, headers: { origin: PUBLIC_ORIGIN } };
}

/** Invite `email` into the org of `admin` with `role` and accept; returns the new member. */
export async function addMember(
  t: TestApp,
  admin: SignedUp,
  role: 'owner' | 'admin' | 'member',
): Promise<SignedUp> {
  const email = uniqueEmail(role);
  const invite = await t.app.inject({ method: 'POST', url: `/v1/orgs/${admin.orgId}/invitations`, ...asUser(admin.token), payload: { email, role } });
  if (invite.statusCode !== 201) throw new Error(`invite failed: ${invite.statusCode} ${invite.body}`);
  const token = inviteToken(t, email);
  const accept = await t.app.inject({
    method: 'POST',
    url: '/v1/invitations/accept',
    payload: { token, name: `Member ${role}`, password: GOOD_PASSWORD, ageConfirmed: true },
  });
  if (accept.statusCode !== 201) throw new Error(`accept failed: ${accept.statusCode} ${accept.body}`);
  const body = accept.json<{ user: { id: string }; organization: { id: string } }>();
  return { token: sessionCookie(accept), userId: body.user.id, orgId: body.organization.id, email, password: GOOD_PASSWORD };
}

/** The token from the last mail of `kind` to `to`. */
export function mailToken(t: TestApp, to: string, kind: string): string {
  const mail = t.outbox().filter((m) => m.to === to && m.kind === kind).at(-1);
  const token = mail ? /Token: (\S+)/.exec(mail.text)?.[1] : undefined;
  if (!token) throw new Error(`no ${kind} mail to ${to}`);
  return token;
}

export function inviteToken(t: TestApp, email: string): string {
  return mailToken(t, email, 'invitation');
}

/** Audit actions recorded so far, oldest first. */
export function auditActions(t: TestApp): string[] {
  return (t.services.database.sqlite.prepare('SELECT action FROM audit_events ORDER BY seq').all() as { action: string }[]).map((r) => r.action);
}

export type { LightMyRequestResponse };
