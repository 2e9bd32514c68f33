import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../app.js';

export function healthRoutes(app: FastifyInstance, services: Services): void {
  app.get(
    '/healthz',
    { schema: { tags: ['health'], summary: 'Process is up', response: { 200: Type.Object({ status: Type.Literal('ok') }) } } },
    async () => ({ status: 'ok' as const }),
  );

  app.get('/readyz', { schema: { tags: ['health'], summary: 'Database answers' } }, async (_request, reply) => {
    const ok = services.database.ping();
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ready' : 'unavailable' });
  });

  app.get('/metrics', { schema: { tags: ['health'], summary: 'Prometheus metrics', hide: true } }, async (_request, reply) => {
    const text = await services.metrics.registry.metrics();
    return reply.type(services.metrics.registry.contentType).send(text);
  });
}
