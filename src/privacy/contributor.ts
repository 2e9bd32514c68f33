import type BetterSqlite3 from 'better-sqlite3';
import type { JsonValue } from '../audit/events.js';

/**
 * The person a privacy request is about. `email` is their current address
 * (normalised); `orgId` is null for Cleverom staff principals.
 */
export interface PrivacySubject {
  userId: string;
  email: string;
  orgId: string | null;
}

/**
 * What the erasure hooks share while they run, in registration order: the
 * IP addresses seen for the person (collected from sessions and audit
 * details before those are deleted) so that later hooks can remove rows
 * keyed by them (e.g. rate-limit counters); and every email address known
 * for them (current, pending change, asserted by SSO), so that copies held
 * outside the database (the development outbox) can be deleted after the
 * erasure commits.
 */
export interface ErasureSubject extends PrivacySubject {
  readonly ips: Set<string>;
  readonly emails: Set<string>;
}

/** Export sections: top-level keys of the export document. */
export type ExportSections = { [section: string]: JsonValue };

/**
 * How a feature takes part in the data-subject rights (GDPR Art. 15, 17, 20;
 * CCPA "know"/"delete"; VCDPA access/delete/copy). Every feature that stores
 * personal data implements one, in its own folder (`src/<feature>/privacy.ts`),
 * and lists the tables it covers; `test/privacy/contributors.test.ts` walks the
 * real schema and fails when a table holding personal data is covered by no
 * contributor.
 *
 * Both hooks run inside ONE transaction of the privacy repository (with the
 * audit event of the request), on the SQLite connection; they are
 * synchronous for that reason. A PostgreSQL implementation would pass its
 * own transaction handle as `Tx`.
 */
export interface PrivacyContributor<Tx = BetterSqlite3.Database> {
  /** Short name, for error messages and docs. */
  readonly name: string;
  /** The tables whose personal data this contributor exports and erases. */
  readonly tables: readonly string[];
  /**
   * Everything the feature holds about the person, as JSON sections. Never
   * secrets, password/code/token hashes or sealed values: their existence
   * and dates only.
   */
  export(tx: Tx, subject: PrivacySubject): ExportSections;
  /**
   * Delete (or irreversibly pseudonymise) the person's personal data in the
   * feature's tables. Runs before the `users` row itself is deleted.
   */
  erase(tx: Tx, subject: ErasureSubject): void;
}

/** Epoch milliseconds (or null) as an ISO-8601 string (or null), for export sections. */
export function isoOrNull(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}
