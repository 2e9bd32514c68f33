/**
 * The reference server of `npm run bench`: a bare Fastify route returning a
 * fixed JSON body, run with plain `node` like the built app (no tsx).
 *
 *   BENCH_BODY='{"…"}' BENCH_LOGGER=on|off PORT=… node bench/bare-server.mjs
 *
 * GET /v1/me answers BENCH_BODY (parsed, so Fastify serializes it like any
 * handler result); GET /readyz answers {"status":"ready"}. Plain JavaScript
 * on purpose: TypeScript would need tsx, whose loader costs memory and
 * start-up time the built app does not pay.
 */
import Fastify from 'fastify';

const body = JSON.parse(process.env.BENCH_BODY ?? '{}');
const app = Fastify({ logger: process.env.BENCH_LOGGER === 'on' ? { level: 'info' } : false });
app.get('/v1/me', async () => body);
app.get('/readyz', async () => ({ status: 'ready' }));
process.on('SIGTERM', () => {
  app.close().then(() => process.exit(0), () => process.exit(1));
});
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
