import type { FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type BetterSqlite3 from 'better-sqlite3';
import type { Clock } from '../platform/clock.js';

type Callback = (error: Error | null, result?: { current: number; ttl: number }) => void;

/**
 * A @fastify/rate-limit store kept in the database, so every instance behind a
 * load balancer counts the same window (fixed window per key).
 */
export function sqliteRateLimitStore(sqlite: BetterSqlite3.Database, clock: Clock): FastifyRateLimitStoreCtor {
  const hit = sqlite.prepare<[{ key: string; now: number; window: number }], { count: number; window_start: number }>(
    `INSERT INTO rate_limit_hits (key, window_start, count) VALUES (@key, @now, 1)
     ON CONFLICT (key) DO UPDATE SET
       count = CASE WHEN window_start + @window <= @now THEN 1 ELSE count + 1 END,
       window_start = CASE WHEN window_start + @window <= @now THEN @now ELSE window_start END
     RETURNING count, window_start`,
  );
  const peek = sqlite.prepare<[string], { count: number; window_start: number }>('SELECT count, window_start FROM rate_limit_hits WHERE key = ?');
  const prune = sqlite.prepare<[number]>('DELETE FROM rate_limit_hits WHERE window_start < ?');
  let lastPrune = 0;

  return class SqliteRateLimitStore {
    /** Each route counts on its own (`child()` names the route), like the plugin's own stores. */
    private readonly prefix: string;
    /** The plugin constructs the root store with its options; `child()` passes a route prefix. */
    constructor(_options?: unknown, prefix = '') {
      this.prefix = prefix;
    }

    incr(rawKey: string, cb: Callback, timeWindow: number): void {
      const key = `${this.prefix}${rawKey}`;
      try {
        const now = clock.now().getTime();
        if (now - lastPrune > 60_000) {
          prune.run(now - 24 * 3600_000);
          lastPrune = now;
        }
        const row = hit.get({ key, now, window: timeWindow });
        if (!row) throw new Error('rate limit upsert returned nothing');
        cb(null, { current: row.count, ttl: Math.max(0, row.window_start + timeWindow - now) });
      } catch (error) {
        cb(error as Error);
      }
    }

    read(rawKey: string, cb: Callback, timeWindow: number): void {
      const key = `${this.prefix}${rawKey}`;
      const now = clock.now().getTime();
      const row = peek.get(key);
      if (!row || row.window_start + timeWindow <= now) cb(null, { current: 0, ttl: 0 });
      else cb(null, { current: row.count, ttl: row.window_start + timeWindow - now });
    }

    child(options: object): SqliteRateLimitStore {
      // At run time the plugin passes its merged options with `routeInfo` (the route's options).
      const route = (options as { routeInfo?: { method?: string | string[]; url?: string } }).routeInfo;
      return new SqliteRateLimitStore(undefined, route?.url ? `${String(route.method)} ${route.url}|` : '');
    }
  };
}
