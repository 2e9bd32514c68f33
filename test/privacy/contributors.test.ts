/**
 * Completeness of the privacy contributors. The export and the erasure can
 * only be as complete as the list of tables the features declare, so this
 * walks the REAL schema (the migrated database: `sqlite_master`,
 * `PRAGMA table_info`, `PRAGMA foreign_key_list`) and fails when
 *  - a table is neither covered by a contributor nor on the allow-list below;
 *  - a table holding personal data (a column referencing users, or an
 *    email / IP / user-agent / name / phone column) is only allow-listed
 *    without naming exactly those columns;
 *  - a contributor names a table that does not exist, or two name the same;
 *  - after an erasure, a row still points at the erased user (outside the
 *    pseudonymous references kept on purpose).
 * A new feature that adds a personal-data table must add a contributor
 * (`src/<feature>/privacy.ts`, registered in `src/privacy/registry.ts`).
 */
import type BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PRIVACY_CONTRIBUTORS } from '../../src/privacy/registry.js';
import { addMember, asUser, buildTestApp, login, signup, type TestApp } from '../helpers/app.js';

/** Tables with no personal data, each with why; `flaggedColumns` are columns the heuristic below flags that are not about a person. */
const ALLOW_LIST: Record<string, { reason: string; flaggedColumns?: string[] }> = {
  __drizzle_migrations: { reason: 'migration bookkeeping (hashes and times)' },
  service_tokens: { reason: 'machine callers; `name` names a calling service', flaggedColumns: ['name'] },
  sso_connections: { reason: "an organization's IdP configuration; `name` names the connection", flaggedColumns: ['name'] },
  sso_transactions: { reason: 'one-time OIDC/SAML protocol state (10 minutes), linked to no user' },
  saml_seen_assertions: { reason: 'SAML replay cache: assertion ids chosen by the IdP and times, linked to no user' },
  org_domains: { reason: 'domain names claimed by organizations' },
};

/** Pseudonymous references kept on purpose after erasure (append-only audit chain; the staff access record). */
const RETAINED_REFERENCES = new Set([
  'audit_events.actor_id',
  'audit_events.subject_id',
  'access_requests.staff_id',
  'access_requests.decided_by',
  'access_requests.customer_decided_by',
  'access_requests.revoked_by',
]);

const PERSONAL_COLUMN = /(^|_)(email|ip|ip_address|user_agent|name|first_name|last_name|phone|address|birth.*)$/i;
const USER_REFERENCE = /(^|_)(user|staff|actor|subject|member|owner)_id$|_by$/i;

interface Column {
  table: string;
  name: string;
  referencesUsers: boolean;
}

function columnsOf(sqlite: BetterSqlite3.Database): Map<string, Column[]> {
  const tables = sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[];
  const result = new Map<string, Column[]>();
  for (const { name: table } of tables) {
    const fks = sqlite.prepare(`PRAGMA foreign_key_list("${table}")`).all() as { table: string; from: string }[];
    const columns = sqlite.prepare(`PRAGMA table_info("${table}")`).all() as { name: string }[];
    result.set(
      table,
      columns.map((c) => ({ table, name: c.name, referencesUsers: fks.some((fk) => fk.table === 'users' && fk.from === c.name) || (table !== 'users' && USER_REFERENCE.test(c.name)) })),
    );
  }
  return result;
}

/** Why the schema is not fully covered; empty when it is. */
function coverageProblems(sqlite: BetterSqlite3.Database): string[] {
  const problems: string[] = [];
  const schema = columnsOf(sqlite);
  const covered = new Map<string, string>();
  for (const contributor of PRIVACY_CONTRIBUTORS) {
    for (const table of contributor.tables) {
      if (!schema.has(table)) problems.push(`contributor ${contributor.name} names a table that does not exist: ${table}`);
      const other = covered.get(table);
      if (other) problems.push(`table ${table} is covered by two contributors: ${other} and ${contributor.name}`);
      covered.set(table, contributor.name);
    }
  }
  for (const [table, columns] of schema) {
    const flagged = columns.filter((c) => c.referencesUsers || PERSONAL_COLUMN.test(c.name)).map((c) => c.name).sort();
    const allowed = ALLOW_LIST[table];
    if (covered.has(table)) {
      if (allowed) problems.push(`table ${table} is both covered (${covered.get(table)}) and allow-listed`);
      continue;
    }
    if (!allowed) {
      problems.push(
        flagged.length > 0
          ? `table ${table} holds personal data (${flagged.join(', ')}) but no privacy contributor covers it`
          : `table ${table} is neither covered by a privacy contributor nor on the allow-list`,
      );
      continue;
    }
    const declared = [...(allowed.flaggedColumns ?? [])].sort();
    if (JSON.stringify(declared) !== JSON.stringify(flagged)) {
      problems.push(`allow-listed table ${table} has personal-looking columns [${flagged.join(', ')}], the allow-list explains [${declared.join(', ')}]`);
    }
  }
  for (const table of Object.keys(ALLOW_LIST)) if (!schema.has(table)) problems.push(`allow-listed table ${table} does not exist`);
  return problems;
}

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

describe('privacy contributors cover the schema', () => {
  it('every table is covered by a contributor or allow-listed with a reason', () => {
    expect(coverageProblems(t.services.database.sqlite)).toEqual([]);
  });

  it.each([
    ['a table with an email column', 'CREATE TABLE newsletter_signups (id TEXT PRIMARY KEY, email TEXT NOT NULL)', /newsletter_signups holds personal data \(email\)/],
    ['a table referencing users', 'CREATE TABLE webauthn_keys (id TEXT PRIMARY KEY, user_id TEXT REFERENCES users(id), public_key TEXT)', /webauthn_keys holds personal data \(user_id\)/],
    ['a table with an IP column', 'CREATE TABLE login_history (id TEXT PRIMARY KEY, ip TEXT, at INTEGER)', /login_history holds personal data \(ip\)/],
    ['a harmless table nobody classified', 'CREATE TABLE feature_flags (key TEXT PRIMARY KEY, value TEXT)', /feature_flags is neither covered/],
    ['a personal column added to an allow-listed table', 'ALTER TABLE sso_connections ADD COLUMN contact_email TEXT', /sso_connections has personal-looking columns \[contact_email, name\]/],
  ])('would fail for %s', (_label, ddl, expected) => {
    t.services.database.sqlite.exec(ddl);
    expect(coverageProblems(t.services.database.sqlite).join('\n')).toMatch(expected);
  });

  it('leaves no row pointing at an erased user, except the pseudonymous references kept on purpose', async () => {
    const owner = await signup(t.app);
    const member = await addMember(t, owner, 'admin');
    const token = await login(t.app, member.email);
    await t.app.inject({ method: 'PUT', url: '/v1/me/consents', ...asUser(token), payload: { marketing: true } });
    await t.app.inject({ method: 'POST', url: '/v1/password-reset', payload: { email: member.email } });
    await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/invitations`, ...asUser(token), payload: { email: 'someone@example.com', role: 'member' } });
    expect((await t.app.inject({ method: 'POST', url: `/v1/orgs/${owner.orgId}/members/${member.userId}/erasure`, ...asUser(owner.token) })).statusCode).toBe(202);

    const sqlite = t.services.database.sqlite;
    const leftovers: string[] = [];
    for (const [table, columns] of columnsOf(sqlite)) {
      for (const column of columns) {
        const key = `${table}.${column.name}`;
        if (!(column.referencesUsers || (table === 'users' && column.name === 'id')) || RETAINED_REFERENCES.has(key)) continue;
        const { n } = sqlite.prepare(`SELECT COUNT(*) AS n FROM "${table}" WHERE "${column.name}" = ?`).get(member.userId) as { n: number };
        if (n > 0) leftovers.push(`${key} (${n})`);
      }
    }
    expect(leftovers).toEqual([]);
  });
});
