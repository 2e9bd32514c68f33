import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';

/** Fixed-window per-IP counters for @fastify/rate-limit, shared by every instance. */
export const rateLimitHits = sqliteTable('rate_limit_hits', {
  key: text('key').primaryKey(),
  windowStart: integer('window_start').notNull(),
  count: integer('count').notNull(),
});
