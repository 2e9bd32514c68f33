/**
 * `npm run bench:scale`: the scale part of issue 9.
 *
 * 1. Seeds two databases with the real migrations and schema:
 *    - large: 1 M users (10 k organizations), 10 M sessions, 10 M audit events;
 *    - small: the "10 k-row case": 1 k users, 10 k sessions, 10 k events.
 *    Rows are written in bulk: secondary indexes are dropped and rebuilt
 *    from their own SQL (a sort instead of 10 M random B-tree inserts),
 *    foreign-key checks and the journal are off during the load only, then
 *    the file is put back in WAL mode and checked (`PRAGMA foreign_key_check`
 *    on the sessions' users). The audit events form a real hash chain
 *    (keyed: digest, link and MAC under `BENCH_AUDIT_KEY`), so `audit:verify`
 *    checks all 10 M.
 *    Session tokens are derived from their index (HMAC), so the benchmark can
 *    present any of the 10 M sessions without storing tokens.
 * 2. Measures, each figure against its reference in the same run:
 *    - GET /v1/me with cookies of 10 k sessions spread over the large
 *      database vs the same on the small one (alternating slices);
 *    - `audit.verify()` over the 10 M events (events/s, target ≥ 100 k/s since
 *      the chain is keyed: a MAC and a second SHA-256 per event, issue 23);
 *    - database size on disk; seeding time per table.
 *
 * Bounded: the seeding of the large database is refused when it would need
 * more than 90 % of the free disk space, every load slice is 3 s, and the
 * whole run prints its elapsed time (about 6 minutes on the 2-core machine
 * of bench/README.md). Options: --users N (default 1000000; sessions and events
 * are 10 per user), --dir D (default a temp dir), --keep (keep the databases:
 * a second run with --dir D --reuse skips seeding).
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import argon2 from 'argon2';
import BetterSqlite3 from 'better-sqlite3';
import { AuditKeyRing } from '../src/audit/audit-keys.js';
import { canonicalJson, eventDigest, GENESIS_HASH, linkHash } from '../src/audit/chain.js';
import { SqliteAuditLog } from '../src/audit/sqlite-audit.js';
import { ARGON2_FLOOR } from '../src/config/load-config.js';
import { systemClock } from '../src/platform/clock.js';
import { migrateSqlite, openSqlite } from '../src/platform/db/sqlite.js';
import { Collector, ForeignCpu, RssSampler, build, fmt, httpSlice, killAll, log, mib, pct, printTable, startApp, stopServer, type HttpTarget, type Row } from './lib.js';

const TOKEN_KEY = 'cleverom-scale-bench';
/** A fixed AUDIT_KEY, so a database kept with --keep still verifies on a --reuse run. */
const BENCH_AUDIT_KEY = `bench:${Buffer.alloc(32, 7).toString('base64')}`;
const benchAuditKeys = AuditKeyRing.derive([{ id: 'bench', key: Buffer.alloc(32, 7) }]);
const SESSIONS_PER_USER = 10;
const EVENTS_PER_USER = 10;
const USERS_PER_ORG = 100;
const BATCH = 50_000;
const SAMPLE = 10_000;
const SLICES = 3;
const SLICE_SECONDS = 3;

/** A UUID-shaped id, unique per (kind, index), ordered by index (like UUIDv7). */
function idOf(kind: number, index: number): string {
  const hex = index.toString(16).padStart(12, '0');
  return `00000000-0000-7000-${(0x8000 + kind).toString(16)}-${hex}`;
}

/** The session token of session `index` (what a browser would hold); only its SHA-256 is stored. */
export function tokenOf(index: number): string {
  return createHmac('sha256', TOKEN_KEY).update(String(index)).digest('base64url');
}

interface SeedTimes {
  [table: string]: number;
}

/** Seed `users` users (and 10× sessions and events) into a new database file. */
async function seed(file: string, users: number): Promise<SeedTimes> {
  const times: SeedTimes = {};
  const database = openSqlite(file);
  migrateSqlite(database);
  database.close();

  const db = new BetterSqlite3(file);
  // Bulk load only: no journal, no fsync, no FK checks; restored below.
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.pragma('foreign_keys = OFF');
  db.pragma('cache_size = -262144'); // 256 MiB page cache for the index builds
  db.pragma('temp_store = MEMORY');
  const indexes = db
    .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ('users', 'sessions', 'audit_events', 'orgs')")
    .all() as { name: string; sql: string }[];
  for (const index of indexes) db.exec(`DROP INDEX ${index.name}`);

  const now = Date.now();
  const passwordHash = await argon2.hash('correct horse battery staple', { type: argon2.argon2id, ...ARGON2_FLOOR });
  const timed = (name: string, fn: () => void): void => {
    const t = performance.now();
    fn();
    times[name] = (performance.now() - t) / 1000;
    log(`  ${name}: ${fmt(times[name] ?? 0, 1)} s`);
  };
  const inBatches = (total: number, fn: (i: number) => void): void => {
    for (let start = 0; start < total; start += BATCH) {
      db.transaction(() => {
        for (let i = start; i < Math.min(total, start + BATCH); i += 1) fn(i);
      })();
    }
  };

  const orgs = Math.ceil(users / USERS_PER_ORG);
  timed('orgs', () => {
    const insert = db.prepare("INSERT INTO orgs (id, name, slug, plan, settings, created_at, updated_at) VALUES (?, ?, ?, 'pro', '{}', ?, ?)");
    inBatches(orgs, (i) => insert.run(idOf(1, i), `Scale Org ${i}`, `scale-org-${i}`, now, now));
  });
  timed('users', () => {
    const insert = db.prepare(
      "INSERT INTO users (id, email, name, phone, password_hash, org_id, role, age_confirmed_at, status, created_at, updated_at) VALUES (?, ?, ?, NULL, ?, ?, ?, ?, 'active', ?, ?)",
    );
    inBatches(users, (i) =>
      insert.run(idOf(2, i), `user${i}@scale.invalid`, `Scale User ${i}`, passwordHash, idOf(1, Math.floor(i / USERS_PER_ORG)), i % USERS_PER_ORG === 0 ? 'owner' : 'member', now, now, now),
    );
  });
  // 30-day idle and absolute windows, so a kept database stays usable for later runs.
  const month = 30 * 24 * 3_600_000;
  timed('sessions', () => {
    const insert = db.prepare(
      `INSERT INTO sessions (id, user_id, token_hash, aal, auth_method, created_at, last_seen_at, expires_at, idle_timeout_ms, reauthenticated_at, ip, user_agent)
       VALUES (?, ?, ?, 1, 'password', ?, ?, ?, ?, ?, '127.0.0.1', 'scale-bench')`,
    );
    inBatches(users * SESSIONS_PER_USER, (i) =>
      insert.run(idOf(3, i), idOf(2, i % users), createHash('sha256').update(tokenOf(i), 'utf8').digest('hex'), now, now, now + month, month, now),
    );
  });
  timed('audit_events (hash chain)', () => {
    const insert = db.prepare(
      `INSERT INTO audit_events (seq, id, at, action, actor_type, actor_id, org_id, subject_id, data, pii_commitment, prev_hash, hash, mac, key_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)`,
    );
    let prevHash = GENESIS_HASH;
    const start = now - users * EVENTS_PER_USER;
    inBatches(users * EVENTS_PER_USER, (i) => {
      const user = i % users;
      const core = {
        seq: i + 1,
        id: idOf(4, i),
        at: new Date(start + i).toISOString(),
        action: i % 3 === 0 ? 'auth.login.failed' : 'auth.login.succeeded',
        actorType: 'user',
        actorId: idOf(2, user),
        orgId: idOf(1, Math.floor(user / USERS_PER_ORG)),
        subjectId: idOf(2, user),
        data: canonicalJson({ sessionId: idOf(3, i), method: 'password' }),
        piiCommitment: null,
      };
      const hash = linkHash(eventDigest(core), prevHash);
      const { keyId, mac } = benchAuditKeys.mac(hash);
      insert.run(core.seq, core.id, core.at, core.action, core.actorType, core.actorId, core.orgId, core.subjectId, core.data, prevHash, hash, mac, keyId);
      prevHash = hash;
    });
  });
  timed('indexes (rebuilt)', () => {
    for (const index of indexes) db.exec(index.sql);
  });
  timed('checks + WAL', () => {
    const orphans = db.prepare('PRAGMA foreign_key_check(sessions)').all().length + db.prepare('PRAGMA foreign_key_check(users)').all().length;
    if (orphans > 0) throw new Error(`${orphans} foreign-key violations after seeding`);
    db.exec('ANALYZE');
    db.pragma('journal_mode = WAL');
  });
  db.close();
  return times;
}

function sizeOf(file: string): number {
  return ['', '-wal', '-shm'].reduce((sum, suffix) => sum + (existsSync(file + suffix) ? statSync(file + suffix).size : 0), 0);
}

/** /v1/me over a sample of sessions: each connection walks its own part of the sample, round robin. */
function meTarget(url: string, users: number, sample: number): HttpTarget {
  const total = users * SESSIONS_PER_USER;
  const step = Math.max(1, Math.floor(total / sample));
  const cookies = Array.from({ length: Math.min(sample, total) }, (_, k) => `__Host-cleverom_session=${tokenOf((k * step) % total)}`);
  let next = 0;
  return {
    url: `${url}/v1/me`,
    connections: 10,
    expect: 200,
    requests: [
      {
        setupRequest: (request: { headers?: Record<string, string> }) => {
          const cookie = cookies[next % cookies.length] ?? '';
          next += 1;
          return { ...request, headers: { ...request.headers, cookie } };
        },
      },
    ],
  };
}

async function main(): Promise<void> {
  const began = performance.now();
  const { values } = parseArgs({ options: { users: { type: 'string' }, dir: { type: 'string' }, keep: { type: 'boolean' }, reuse: { type: 'boolean' } } });
  const users = Number(values.users ?? 1_000_000);
  if (!Number.isInteger(users) || users < 1000) throw new Error('--users must be an integer ≥ 1000');
  const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'cleverom-scale-'));
  mkdirSync(dir, { recursive: true });
  const large = join(dir, `large-${users}.db`);
  const small = join(dir, 'small-1000.db');
  const secretsKey = randomBytes(32).toString('base64');
  const servers: Awaited<ReturnType<typeof startApp>>[] = [];
  try {
    log('npm run build');
    build();
    const seedTimes: Record<string, SeedTimes> = {};
    for (const [file, n, label] of [[small, 1000, 'small'], [large, users, 'large']] as const) {
      if (values.reuse && existsSync(file)) continue;
      rmSync(file, { force: true });
      // About 11.2 kB per user with its 10 sessions and 10 events (measured: 11.2 GB for 1 M); refuse if it cannot fit.
      const need = n * 12_000;
      const free = statfsSync(dir).bavail * statfsSync(dir).bsize;
      if (need > free * 0.9) throw new Error(`seeding ${label} needs about ${fmt(need / 1e9)} GB, ${fmt(free / 1e9)} GB free in ${dir}`);
      log(`seeding ${label}: ${n} users, ${n * SESSIONS_PER_USER} sessions, ${n * EVENTS_PER_USER} audit events → ${file}`);
      seedTimes[label] = await seed(file, n);
    }

    // audit:verify speed on the large chain (one core, in this process, as the CLI runs it).
    log('audit.verify() over the large chain');
    const verifyDb = new BetterSqlite3(large, { readonly: true });
    const t = performance.now();
    const verified = new SqliteAuditLog(verifyDb, systemClock, benchAuditKeys).verify();
    const verifySeconds = (performance.now() - t) / 1000;
    verifyDb.close();
    if (!verified.ok) throw new Error(`the seeded chain does not verify: ${JSON.stringify(verified)}`);

    log('starting the app on each database, with the session cache off (every check reads SQLite) and on');
    const apps = {
      largeOff: await startApp(large, secretsKey, { SESSION_CACHE_SIZE: '0', AUDIT_KEY: BENCH_AUDIT_KEY }),
      smallOff: await startApp(small, secretsKey, { SESSION_CACHE_SIZE: '0', AUDIT_KEY: BENCH_AUDIT_KEY }),
      largeOn: await startApp(large, secretsKey, { AUDIT_KEY: BENCH_AUDIT_KEY }),
      smallOn: await startApp(small, secretsKey, { AUDIT_KEY: BENCH_AUDIT_KEY }),
    };
    servers.push(...Object.values(apps));
    const targets = {
      largeOff: meTarget(apps.largeOff.url, users, SAMPLE),
      smallOff: meTarget(apps.smallOff.url, 1000, SAMPLE),
      largeOn: meTarget(apps.largeOn.url, users, SAMPLE),
      smallOn: meTarget(apps.smallOn.url, 1000, SAMPLE),
    };
    // Warm-up: one round over every sampled session (this also makes the once-a-minute lastSeenAt touch of each).
    log(`warm-up: every one of the ${SAMPLE} sampled sessions once, on each`);
    for (const target of Object.values(targets)) await httpSlice({ ...target, amount: SAMPLE } as HttpTarget, 60);
    log(`GET /v1/me over 10 k sessions: large vs small database, cache off and on, ${SLICES} × ${SLICE_SECONDS} s each, alternating`);
    const runs = { largeOff: new Collector(), smallOff: new Collector(), largeOn: new Collector(), smallOn: new Collector() };
    const rss = new RssSampler(apps.largeOff);
    const rssOn = new RssSampler(apps.largeOn);
    const foreign = new ForeignCpu();
    foreign.begin();
    for (let i = 0; i < SLICES; i += 1) {
      for (const name of ['largeOff', 'smallOff', 'largeOn', 'smallOn'] as const) {
        const sampler = name === 'largeOff' ? rss : name === 'largeOn' ? rssOn : null;
        sampler?.start();
        await httpSlice(targets[name], SLICE_SECONDS, runs[name]);
        sampler?.stop();
      }
    }
    const foreignCpu = foreign.end();
    for (const server of servers) await stopServer(server);

    const l = runs.largeOff.result();
    const s = runs.smallOff.result();
    const lc = runs.largeOn.result();
    const sc = runs.smallOn.result();
    const rows: Row[] = [
      { figure: `GET /v1/me, 10 k of ${fmt((users * SESSIONS_PER_USER) / 1e6, 1)} M sessions, cache off (c=10)`, value: l.rps, unit: 'req/s', referenceName: '10 k-row database, cache off', reference: s.rps, target: { op: '≥', ratio: 0.8 }, digits: 0 },
      { figure: 'GET /v1/me p99, large (cache off)', value: l.p99, unit: 'ms', referenceName: '10 k-row database', reference: s.p99, digits: 2 },
      { figure: 'GET /v1/me, large, session cache on', value: lc.rps, unit: 'req/s', referenceName: '10 k-row database, cache on', reference: sc.rps, target: { op: '≥', ratio: 0.8 }, digits: 0 },
      { figure: `audit.verify() over ${fmt(verified.events / 1e6, 1)} M events`, value: verified.events / verifySeconds, unit: 'events/s', referenceName: 'target', reference: 100_000, target: { op: '≥', ratio: 1 }, digits: 0 },
      { figure: 'database size on disk, large', value: sizeOf(large) / 1e9, unit: 'GB', referenceName: '10 k-row database', reference: sizeOf(small) / 1e9, digits: 2 },
      { figure: 'RSS max under load, large database', value: mib(Math.max(rss.max, rssOn.max)), unit: 'MiB', referenceName: 'target 250 MB', reference: 250e6 / 2 ** 20, target: { op: '≤', ratio: 1 } },
    ];
    process.stdout.write(`\n${printTable(rows)}\n`);
    for (const [label, times] of Object.entries(seedTimes)) {
      const total = Object.values(times).reduce((a, b) => a + b, 0);
      process.stdout.write(`seeding ${label}: ${Object.entries(times).map(([k, v]) => `${k} ${fmt(v, 0)} s`).join(', ')}; total ${fmt(total, 0)} s\n`);
    }
    process.stdout.write(
      [
        `audit.verify(): ${verified.events} events in ${fmt(verifySeconds, 1)} s`,
        `requests (cache off / on): large ${JSON.stringify(l.statuses)} / ${JSON.stringify(lc.statuses)}, small ${JSON.stringify(s.statuses)} / ${JSON.stringify(sc.statuses)}`,
        `CPU used by other processes during the measured slices: ${pct(foreignCpu)} of the machine`,
        `total: ${fmt((performance.now() - began) / 1000, 0)} s; databases in ${dir}${values.keep ? ' (kept)' : ' (removed)'}`,
        '',
      ].join('\n'),
    );
    if (l.bad + s.bad + lc.bad + sc.bad > 0) {
      process.stdout.write('WARNING: some requests did not answer 200.\n');
      process.exitCode = 1;
    }
  } finally {
    for (const server of servers) await stopServer(server).catch(() => undefined);
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:scale failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  killAll();
  process.exit(1);
});
