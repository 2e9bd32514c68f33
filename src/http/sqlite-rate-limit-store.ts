import type { FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type BetterSqlite3 from 'better-sqlite3';
import type { Clock } from '../platform/clock.js';

type Callback = (error: Error | null, result?: { current: number; ttl: number }) => void;

/**
 * A @fastify/rate-limit store kept in the database, so every instance behind
 * a load balancer counts the same hits.
 *
 * SECURITY.md "throttling": a **sliding** window per IP. A fixed window let
 * a client spend its budget at the end of one minute and again at the start
 * of the next (twice the limit in two seconds). This is a sliding log: one
 * row per accepted request; a request is refused when `max` requests were
 * accepted in the last `timeWindow` ms, and `Retry-After` is the time until
 * the oldest of them leaves the window. Refused requests are not logged, so
 * a client that keeps knocking gets exactly `max` per window, no more and no
 * fewer. Each check is one transaction (count, then log), so instances and
 * processes never both take the last slot. Rows that have left every window
 * are deleted at most once a minute, not on each request (credential routes
 * are a hot path).
 */
export function sqliteRateLimitStore(sqlite: BetterSqlite3.Database, clock: Clock): FastifyRateLimitStoreCtor {
  const window = sqlite.prepare<[string, number], { n: number; oldest: number | null }>(
    'SELECT count(*) AS n, min(at) AS oldest FROM rate_limit_log WHERE key = ? AND at > ?',
  );
  const log = sqlite.prepare<[string, number]>('INSERT INTO rate_limit_log (key, at) VALUES (?, ?)');
  const prune = sqlite.prepare<[number]>('DELETE FROM rate_limit_log WHERE at <= ?');
  let lastPrune = 0;
  let longestWindow = 0;

  const check = sqlite.transaction((key: string, now: number, timeWindow: number, max: number): { current: number; ttl: number } => {
    longestWindow = Math.max(longestWindow, timeWindow);
    if (now - lastPrune > 60_000) {
      prune.run(now - longestWindow);
      lastPrune = now;
    }
    const { n, oldest } = window.get(key, now - timeWindow) ?? { n: 0, oldest: null };
    // Refused (n ≥ max): nothing logged; one more fits once the oldest accepted hit is out of the window.
    if (n < max) log.run(key, now);
    return { current: n + 1, ttl: Math.max(0, (oldest ?? now) + timeWindow - now) };
  });

  return class SqliteRateLimitStore {
    /** Each route counts on its own (`child()` names the route), like the plugin's own stores. */
    private readonly prefix: string;
    /** The plugin constructs the root store with its options; `child()` passes a route prefix. */
    constructor(_options?: unknown, prefix = '') {
      this.prefix = prefix;
    }

    incr(rawKey: string, cb: Callback, timeWindow: number, max: number): void {
      try {
        cb(null, check.immediate(`${this.prefix}${rawKey}`, clock.now().getTime(), timeWindow, max));
      } catch (error) {
        cb(error as Error);
      }
    }

    read(rawKey: string, cb: Callback, timeWindow: number): void {
      const now = clock.now().getTime();
      const { n, oldest } = window.get(`${this.prefix}${rawKey}`, now - timeWindow) ?? { n: 0, oldest: null };
      cb(null, { current: n, ttl: oldest === null ? 0 : oldest + timeWindow - now });
    }

    child(options: object): SqliteRateLimitStore {
      // At run time the plugin passes its merged options with `routeInfo` (the route's options).
      const route = (options as { routeInfo?: { method?: string | string[]; url?: string } }).routeInfo;
      return new SqliteRateLimitStore(undefined, route?.url ? `${String(route.method)} ${route.url}|` : '');
    }
  };
}
