import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] as const;

/** One (method, route, status) series: plain numbers, updated per request without hashing labels. */
interface Series {
  method: string;
  route: string;
  status: string;
  count: number;
  /** Per-bucket (non-cumulative) counts, one per LATENCY_BUCKETS entry, then +Inf. */
  buckets: number[];
  sum: number;
}

/** The value shape prom-client's Registry formats (`getForPromString`). */
interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  metricName?: string;
}

/**
 * `http_requests_total` and `http_request_duration_seconds`, kept as plain
 * numbers per (method, route, status) and turned into prom-client's format
 * only when /metrics is scraped.
 *
 * Performance (issue 9): prom-client's `inc(labels)` and `observe(labels)`
 * hash and validate the label set on every call; with the async hook that
 * was about 9 µs of every request in the server. This does one Map lookup
 * per request. The exposition text is the same as prom-client's own Counter
 * and Histogram (names, help, labels, cumulative buckets, _sum, _count);
 * test/http/platform.test.ts reads it.
 */
class RequestSeries {
  private readonly series = new Map<string, Series>();

  record(method: string, route: string, statusCode: number, seconds: number): void {
    const key = `${method} ${statusCode} ${route}`;
    let s = this.series.get(key);
    if (!s) {
      // Bounded by routes × methods × statuses (unmatched URLs share one route label).
      s = { method, route, status: String(statusCode), count: 0, buckets: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0), sum: 0 };
      this.series.set(key, s);
    }
    s.count += 1;
    s.sum += seconds;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > (LATENCY_BUCKETS[i] as number)) i += 1;
    s.buckets[i] = (s.buckets[i] ?? 0) + 1;
  }

  counter(): { name: string; help: string; type: string; aggregator: string; get(): MetricValues; getForPromString(): MetricValues; reset(): void } {
    const self = this;
    const values = (): MetricValue[] => [...self.series.values()].map((s) => ({ value: s.count, labels: { method: s.method, route: s.route, status: s.status } }));
    const metric = { name: 'http_requests_total', help: 'HTTP requests by method, route and status', type: 'counter', aggregator: 'sum' };
    return { ...metric, get: () => ({ ...metric, values: values() }), getForPromString: () => ({ ...metric, values: values() }), reset: () => self.series.clear() };
  }

  histogram(): { name: string; help: string; type: string; aggregator: string; get(): MetricValues; getForPromString(): MetricValues; reset(): void } {
    const self = this;
    const name = 'http_request_duration_seconds';
    const values = (): MetricValue[] => {
      // The histogram has no status label: merge a route's series across statuses.
      const byRoute = new Map<string, { method: string; route: string; buckets: number[]; sum: number; count: number }>();
      for (const s of self.series.values()) {
        const key = `${s.method} ${s.route}`;
        const h = byRoute.get(key) ?? { method: s.method, route: s.route, buckets: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0), sum: 0, count: 0 };
        s.buckets.forEach((n, i) => (h.buckets[i] = (h.buckets[i] ?? 0) + n));
        h.sum += s.sum;
        h.count += s.count;
        byRoute.set(key, h);
      }
      const out: MetricValue[] = [];
      for (const h of byRoute.values()) {
        const shared = { method: h.method, route: h.route };
        let cumulative = 0;
        LATENCY_BUCKETS.forEach((le, i) => {
          cumulative += h.buckets[i] ?? 0;
          out.push({ value: cumulative, labels: { le }, sharedLabels: shared, metricName: `${name}_bucket` });
        });
        out.push({ value: h.count, labels: { le: '+Inf' }, sharedLabels: shared, metricName: `${name}_bucket` });
        out.push({ value: h.sum, labels: {}, sharedLabels: shared, metricName: `${name}_sum` });
        out.push({ value: h.count, labels: {}, sharedLabels: shared, metricName: `${name}_count` });
      }
      return out;
    };
    const metric = { name, help: 'HTTP request latency', type: 'histogram', aggregator: 'sum' };
    return { ...metric, get: () => ({ ...metric, values: values() }), getForPromString: () => ({ ...metric, values: values() }), reset: () => self.series.clear() };
  }
}

type MetricValues = { name: string; help: string; type: string; aggregator: string; values: MetricValue[] };

/** Prometheus metrics, one registry per app (tests build many apps in one process). */
export class Metrics {
  readonly registry = new Registry();
  private readonly http = new RequestSeries();
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
    // Same order as before: the HTTP series first, then the login and grant metrics.
    this.registry.registerMetric(this.http.counter() as unknown as Counter);
    this.registry.registerMetric(this.http.histogram() as unknown as Counter);
    collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Count one finished request. Called by the app's request log controller
   * (http/logging.ts), which Fastify calls once per finished response:
   * cheaper than an `onResponse` hook (issue 9).
   */
  observe(request: FastifyRequest, reply: FastifyReply): void {
    this.http.record(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
  }
}
