import { existsSync, readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { asUser, sessionCookie, type SignedUp, type TestApp } from '../helpers/app.js';

export interface AuditRow {
  seq: number;
  action: string;
  actor_type: string;
  actor_id: string | null;
  org_id: string | null;
  subject_id: string | null;
  data: Record<string, unknown>;
  /** The personal side row (without its user id) and whose it is. */
  pii: Record<string, unknown> | null;
  pii_user_id: string | null;
}

/** Audit events of `action`, oldest first, with their personal side row (if still there). */
export function auditEvents(t: TestApp, action: string): AuditRow[] {
  const rows = t.services.database.sqlite
    .prepare(
      `SELECT e.seq, e.action, e.actor_type, e.actor_id, e.org_id, e.subject_id, e.data, p.data AS pii, p.user_id AS pii_user_id
         FROM audit_events e LEFT JOIN audit_pii p ON p.seq = e.seq WHERE e.action = ? ORDER BY e.seq`,
    )
    .all(action) as (Omit<AuditRow, 'data' | 'pii'> & { data: string; pii: string | null })[];
  return rows.map((r) => ({ ...r, data: JSON.parse(r.data) as Record<string, unknown>, pii: r.pii === null ? null : (JSON.parse(r.pii) as Record<string, unknown>) }));
}

/** A request with a unique client IP and user agent, as a browser of that person would send. */
export function device(ip: string, userAgent: string): { remoteAddress: string; headers: Record<string, string> } {
  return { remoteAddress: ip, headers: { 'user-agent': userAgent } };
}

/** Cookie auth plus a device fingerprint. */
export function asUserFrom(token: string, ip: string, userAgent: string): { cookies: Record<string, string>; headers: Record<string, string>; remoteAddress: string } {
  const base = asUser(token);
  return { ...base, remoteAddress: ip, headers: { ...base.headers, 'user-agent': userAgent } };
}

/**
 * `POST /v1/me/reauthenticate` with the password: the session is fresh for 10
 * minutes, under a new token (ASVS 7.2.4), which replaces `user.token`.
 */
export async function reauthenticate(t: TestApp, user: SignedUp): Promise<void> {
  const response = await t.app.inject({ method: 'POST', url: '/v1/me/reauthenticate', ...asUser(user.token), payload: { password: user.password } });
  expect(response.statusCode, response.body).toBe(204);
  user.token = sessionCookie(response);
}

/**
 * The raw bytes of the database, after moving every WAL frame into the main
 * file and truncating the WAL, as an attacker with a copy of the volume
 * would read them (free pages, cell gaps and all).
 */
export function rawDatabaseBytes(t: TestApp): Buffer {
  t.services.database.sqlite.pragma('wal_checkpoint(TRUNCATE)');
  const parts = [readFileSync(t.databaseFile)];
  for (const suffix of ['-wal', '-journal']) {
    if (existsSync(t.databaseFile + suffix)) parts.push(readFileSync(t.databaseFile + suffix));
  }
  return Buffer.concat(parts);
}

/** Which of `needles` occur in the raw file, as UTF-8 (SQLite's text encoding here) or UTF-16. */
export function foundInFile(bytes: Buffer, needles: string[]): string[] {
  return needles.filter((needle) => bytes.includes(Buffer.from(needle, 'utf8')) || bytes.includes(Buffer.from(needle, 'utf16le')));
}

/**
 * The raw bytes of the database's files exactly as the running service
 * leaves them — main file, `-wal` and `-shm` — with NO checkpoint first:
 * what a file-level backup or a copy of the volume taken right after the
 * answer would hold.
 */
export function databaseFilesAsTheyAre(t: TestApp): Buffer {
  const parts: Buffer[] = [];
  for (const suffix of ['', '-wal', '-shm', '-journal']) {
    if (existsSync(t.databaseFile + suffix)) parts.push(readFileSync(t.databaseFile + suffix));
  }
  return Buffer.concat(parts);
}
