import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';

/**
 * Sliding-window log of accepted hits per rate-limit key
 * (`<METHOD> <route>|ip:<address>`) for @fastify/rate-limit, shared by every
 * instance: one row per accepted request, kept for one window.
 */
export const rateLimitLog = sqliteTable(
  'rate_limit_log',
  {
    key: text('key').notNull(),
    at: integer('at').notNull(),
  },
  (table) => [index('rate_limit_log_key_at').on(table.key, table.at)],
);
