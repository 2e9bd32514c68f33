/**
 * The access log (issue 9 made it cheaper; src/http/logging.ts): one line per
 * request, written by the service's logger as text in pino's own format. It
 * must carry exactly what pino wrote before, redact sensitive query values,
 * and leave every other line (request.log, errors) to pino.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { requestLogView } from '../../src/http/log-redaction.js';
import { REDACT_PATHS, lazyChildLogger, serviceLoggerOptions } from '../../src/http/logging.js';
import { asUser, buildTestApp, signup, type TestApp } from '../helpers/app.js';

type Line = Record<string, unknown>;

/** Access lines are handed to the destination at the end of an event-loop turn. */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** A destination that keeps every line written to it. */
function capture(): { stream: Writable & { write(chunk: string): boolean }; lines: () => Line[] } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString('utf8');
      done();
    },
  });
  return { stream, lines: () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line) };
}

const apps: TestApp[] = [];
afterEach(async () => {
  for (const t of apps.splice(0)) await t.close();
});

/** The requests both apps answer, and the access lines they log for them. */
async function accessLines(logger: NonNullable<Parameters<typeof buildTestApp>[0]>['logger'], lines: () => Line[]): Promise<Line[]> {
  const t = await buildTestApp({ logger });
  apps.push(t);
  const owner = await signup(t.app);
  await t.app.inject({ method: 'GET', url: '/healthz?email=ann%40example.com&x=1' });
  await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(owner.token) });
  await t.app.inject({ method: 'GET', url: '/v1/me' });
  await t.app.inject({ method: 'GET', url: '/no/such/route' });
  await nextTurn();
  return lines().filter((l) => l.msg === 'request completed');
}

describe('access log', () => {
  it('writes the same line as pino would, key for key', async () => {
    const fast = capture();
    const fastLines = await accessLines(serviceLoggerOptions('info', fast.stream), fast.lines);
    // The same options without the service marker: every line goes through pino.
    const slow = capture();
    const slowLines = await accessLines(
      { level: 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' }, serializers: { req: requestLogView }, stream: slow.stream },
      slow.lines,
    );
    expect(fastLines).toHaveLength(5);
    expect(slowLines).toHaveLength(5);
    const comparable = (line: Line) => {
      const req = line.req as Line;
      expect(typeof line.time).toBe('number');
      expect(typeof line.responseTime).toBe('number');
      expect(line.reqId).toMatch(/^[0-9a-f-]{36}$/);
      return { ...line, time: 0, responseTime: 0, reqId: '', pid: 0, req: { ...req } };
    };
    for (const [i, line] of fastLines.entries()) {
      const reference = slowLines[i];
      if (!reference) throw new Error('missing reference line');
      expect(Object.keys(line)).toEqual(Object.keys(reference));
      expect(Object.keys(line.req as Line)).toEqual(Object.keys(reference.req as Line));
      expect(comparable(line)).toEqual(comparable(reference));
    }
    const urls = fastLines.map((l) => (l.req as Line).url);
    expect(urls).toContain('/healthz?email=%5Bredacted%5D&x=1');
    expect(urls.join(' ')).not.toContain('ann');
    expect(fastLines.map((l) => (l.res as Line).statusCode)).toEqual([201, 200, 200, 401, 404]);
  });

  it('keeps the order of access lines and other lines', async () => {
    const out = capture();
    const t = await buildTestApp({ logger: serviceLoggerOptions('info', out.stream) });
    apps.push(t);
    await t.app.inject({ method: 'GET', url: '/healthz' });
    t.app.log.warn('right after the first request');
    await t.app.inject({ method: 'GET', url: '/readyz' });
    await nextTurn();
    const messages = out.lines().filter((l) => l.msg !== 'Server listening at').map((l) => l.msg === 'request completed' ? (l.req as Line).url : l.msg);
    expect(messages.slice(-3)).toEqual(['/healthz', 'right after the first request', '/readyz']);
  });

  it('writes nothing above info', async () => {
    const out = capture();
    await accessLines(serviceLoggerOptions('warn', out.stream), out.lines);
    expect(out.lines()).toEqual([]);
  });

  it('request.log is made on first use, with the request id bound', () => {
    const out = capture();
    const root = pino({ level: 'info' }, out.stream);
    const log = lazyChildLogger(root, { reqId: 'r-1' }, {});
    expect(log.level).toBe('info');
    log.debug('not written');
    log.warn({ detail: 1 }, 'written');
    log.child({ step: 'x' }).error('nested');
    expect(out.lines().map((l) => [l.reqId, l.msg, l.level])).toEqual([
      ['r-1', 'written', 40],
      ['r-1', 'nested', 50],
    ]);
    const quiet = lazyChildLogger(root, { reqId: 'r-2' }, { level: 'error' });
    expect(quiet.level).toBe('error');
    quiet.warn('dropped');
    expect(out.lines()).toHaveLength(2);
  });
});
