import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics, one registry per app (tests build many apps in one process). */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly logins = new Counter({
    name: 'logins_total',
    help: 'Password login attempts by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private activeGrantsSource: () => Promise<number> = async () => 0;
  readonly activeGrants = new Gauge({
    name: 'staff_active_grants',
    help: 'Active staff access grants',
    registers: [this.registry],
    // Read at scrape time, from the database (every instance reports the same number).
    collect: async () => {
      this.activeGrants.set(await this.activeGrantsSource());
    },
  });

  /** Where the active-grants gauge reads from (the staff feature). */
  countActiveGrantsWith(source: () => Promise<number>): void {
    this.activeGrantsSource = source;
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  register(app: FastifyInstance): void {
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      this.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
      this.latency.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    });
  }
}
