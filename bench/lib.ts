/**
 * Shared pieces of the benchmarks (`bench/run.ts`, `bench/scale.ts`): servers
 * as child processes on 127.0.0.1, bounded load slices, latency collectors,
 * RSS from /proc, the CPU other processes use meanwhile, and the results table.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const HOST = '127.0.0.1';
export const PUBLIC_ORIGIN = 'https://identity.bench.invalid';
/** The memory settings of the Dockerfile's runtime image (ENV there). */
export const PRODUCTION_MEMORY_ENV = { NODE_OPTIONS: '--max-semi-space-size=4', MALLOC_ARENA_MAX: '1' };

// ---------------------------------------------------------------- processes

export interface Server {
  name: string;
  child: ChildProcess;
  url: string;
  /** Milliseconds from spawn() to the first 200 on /readyz. */
  readyzMs: number;
}

const children = new Set<ChildProcess>();

/** Stop every server still running (on error or at exit). */
export function killAll(): void {
  for (const child of children) child.kill('SIGTERM');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Spawn `node <args>` with `env`, wait for `/readyz` 200 (polled every 5 ms,
 * at most 30 s) and return the time it took from spawn.
 */
export async function startServer(name: string, args: string[], env: Record<string, string>, port: number): Promise<Server> {
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const url = `http://${HOST}:${port}`;
  const deadline = t0 + 30_000;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    try {
      const response = await fetch(`${url}/readyz`);
      await response.arrayBuffer();
      if (response.status === 200) return { name, child, url, readyzMs: performance.now() - t0 };
    } catch {
      // not listening yet
    }
    await sleep(5);
  }
  child.kill('SIGKILL');
  throw new Error(`${name} was not ready within 30 s`);
}

export async function stopServer(server: Server): Promise<void> {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** The production app: `node bin/server.cjs` (Dockerfile; it starts dist/, built by `npm run build`). */
export async function startApp(databaseFile: string, secretsKey: string, extraEnv: Record<string, string> = {}): Promise<Server> {
  const port = await freePort();
  return startServer(
    'app',
    ['bin/server.cjs'],
    {
      // As the Dockerfile runs it (young generation capped, one malloc arena; see there).
      ...PRODUCTION_MEMORY_ENV,
      // Production settings: `__Host-` cookie, HSTS, pino at info on stdout (/dev/null here).
      NODE_ENV: 'production',
      PUBLIC_URL: PUBLIC_ORIGIN,
      SECRETS_KEY: secretsKey,
      DATABASE_URL: `file:${databaseFile}`,
      HOST,
      PORT: String(port),
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
      // The benchmark hammers the credential routes from one IP on purpose.
      RATE_LIMIT_PER_IP_PER_MINUTE: '1000000',
      ...extraEnv,
    },
    port,
  );
}

/** Build dist/ as production does (`npm run build`), unless BENCH_NO_BUILD=1. */
export function build(): void {
  if (process.env.BENCH_NO_BUILD === '1' && existsSync(join(ROOT, 'dist/server.js'))) return;
  const result = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (result.status !== 0) throw new Error('npm run build failed');
}

/** Resident set size of a process, bytes (Linux /proc; NaN elsewhere). */
export function rssOf(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] ? Number(match[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Samples a server's RSS every 200 ms while running; keeps the maximum. */
export class RssSampler {
  max = 0;
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly server: Server) {}
  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), 200);
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sample();
  }
  private sample(): void {
    const rss = rssOf(this.server.child.pid);
    if (Number.isFinite(rss)) this.max = Math.max(this.max, rss);
  }
}

// ---------------------------------------------------------------- measurement

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  bad: number;
  /** Responses by status code. */
  statuses: Record<number, number>;
  seconds: number;
}

/** Latencies and counts accumulated over the slices of one figure. */
export class Collector {
  readonly latencies: number[] = [];
  readonly statuses: Record<number, number> = {};
  bad = 0;
  seconds = 0;
  result(): LoadResult {
    const sorted = Float64Array.from(this.latencies).sort();
    const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
    const requests = sorted.length + this.bad;
    return { rps: sorted.length / this.seconds, p50: at(0.5), p99: at(0.99), requests, bad: this.bad, statuses: this.statuses, seconds: this.seconds };
  }
}

export type HttpTarget = Omit<autocannon.Options, 'duration'> & { expect: number };

/**
 * One autocannon slice of `seconds`; latencies come from the `response`
 * event at full precision. Only answers with the expected status count
 * towards the rate; any other is counted in `bad` (and by status).
 */
export async function httpSlice(target: HttpTarget, seconds: number, into?: Collector): Promise<void> {
  const { expect, ...options } = target;
  const instance = autocannon({ ...options, duration: seconds });
  instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
    if (!into) return;
    into.statuses[statusCode] = (into.statuses[statusCode] ?? 0) + 1;
    if (statusCode === expect) into.latencies.push(responseTimeMs);
    else into.bad += 1;
  });
  const result = await instance;
  if (into) {
    into.seconds += result.duration;
    into.bad += result.errors + result.timeouts;
  }
}

/**
 * CPU used by processes other than this benchmark and its servers, as a share
 * of the machine, from /proc (Linux only; null elsewhere).
 */
export class ForeignCpu {
  private start: { busy: number; ours: number; at: number } | null = null;
  private snapshot(): { busy: number; ours: number; at: number } | null {
    if (!existsSync('/proc/stat')) return null;
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …: busy = all but idle and iowait.
    const busy = fields.slice(0, 8).reduce((sum, v, i) => (i === 3 || i === 4 ? sum : sum + v), 0);
    let ours = 0;
    for (const pid of [process.pid, ...[...children].map((c) => c.pid)]) {
      if (pid === undefined) continue;
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        ours += Number(after[11]) + Number(after[12]); // utime, stime (fields 14, 15)
      } catch {
        // exited
      }
    }
    return { busy, ours, at: performance.now() };
  }
  begin(): void {
    this.start = this.snapshot();
  }
  /** Percent of total CPU capacity used by others since begin(). */
  end(): number | null {
    const end = this.snapshot();
    if (!this.start || !end) return null;
    const ticks = 100; // USER_HZ on Linux
    const capacity = ((end.at - this.start.at) / 1000) * ticks * cpus().length;
    const foreign = end.busy - this.start.busy - (end.ours - this.start.ours);
    return Math.max(0, (foreign / capacity) * 100);
  }
}

// ---------------------------------------------------------------- helpers

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

export function versionOf(pkg: string, root = ROOT): string {
  try {
    return (JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

export const mib = (bytes: number): number => bytes / 1024 / 1024;
export const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a');
export const pct = (n: number | null): string => (n === null ? 'n/a' : `${n.toFixed(0)} %`);

export interface Row {
  figure: string;
  value: number;
  unit: string;
  /** What the figure is compared with, measured in the same run (or a fixed target). */
  referenceName: string;
  reference: number;
  /** The target for value ÷ reference (e.g. "≥ 0.90"), if any. */
  target?: { op: '≥' | '≤'; ratio: number };
  digits?: number;
}

export function printTable(rows: Row[]): string {
  const lines = [
    '| figure | value | reference (same run) | ratio | target | met |',
    '|---|---:|---|---:|---:|:---:|',
    ...rows.map((r) => {
      const d = r.digits ?? 1;
      const ratio = r.value / r.reference;
      const target = r.target ? `${r.target.op} ${r.target.ratio}` : '';
      const met = r.target ? ((r.target.op === '≥' ? ratio >= r.target.ratio : ratio <= r.target.ratio) ? 'yes' : '**no**') : '';
      return `| ${r.figure} | ${fmt(r.value, d)} ${r.unit} | ${r.referenceName}: ${fmt(r.reference, d)} ${r.unit} | ${fmt(ratio, 2)} | ${target} | ${met} |`;
    }),
  ];
  return `${lines.join('\n')}\n`;
}

export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}
