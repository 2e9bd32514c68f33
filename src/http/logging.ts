import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import pino from 'pino';
import { requestLogView } from './log-redaction.js';

/** Paths pino must never print (SECURITY.md: logs). */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.password',
  '*.currentPassword',
  '*.newPassword',
  '*.token',
  '*.code',
  '*.recoveryCode',
  '*.clientSecret',
  '*.secret',
  '*.SAMLResponse',
];

/**
 * Access lines on their way to a destination: collected during an
 * event-loop turn and handed over in one `write` at its end (or at 4 KiB).
 * sonic-boom measures every string it is given (`Buffer.byteLength`), which
 * cost as much per line as building the line. Any other line pino writes to
 * the same destination first hands over what is collected here (pino's
 * `streamWrite` hook), so the order of lines is kept.
 */
class AccessLines {
  private pending = '';
  private scheduled = false;

  constructor(private readonly stream: pino.DestinationStream) {}

  add(line: string): void {
    this.pending += line;
    if (this.pending.length >= 4096) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushAtTurnEnd);
    }
  }

  flush(): void {
    if (this.pending === '') return;
    const lines = this.pending;
    this.pending = '';
    this.stream.write(lines);
  }

  private readonly flushAtTurnEnd = (): void => {
    this.scheduled = false;
    this.flush();
  };
}

let stdout: { stream: pino.DestinationStream; access: AccessLines } | null = null;

/** One buffered stdout destination per process, written out synchronously at exit. */
function bufferedStdout(): { stream: pino.DestinationStream; access: AccessLines } {
  if (stdout) return stdout;
  const stream = pino.destination({ dest: 1, sync: true, minLength: 4096, periodicFlush: LOG_FLUSH_INTERVAL_MS });
  const access = new AccessLines(stream);
  // pino registers this only for asynchronous destinations; ours writes synchronously, in batches.
  process.once('exit', () => {
    access.flush();
    stream.flushSync();
  });
  stdout = { stream, access };
  return stdout;
}

/** Marks logger options made by `serviceLoggerOptions` (their lines may take the fast path below). */
const SERVICE_LOGGER = Symbol('cleverom.serviceLogger');

/** How long a log line may wait in the buffer before it is written (ms). */
export const LOG_FLUSH_INTERVAL_MS = 250;

/**
 * The service's logger: pino JSON on stdout at `level`, secrets redacted.
 *
 * Performance (issue 9): lines are collected in memory and written with one
 * `write(2)` per 4 KiB, and at the latest every 250 ms, instead of one
 * system call per line (5–8 µs each on this machine, a quarter of a bare
 * request). On a normal exit (SIGTERM, SIGINT, an uncaught error) pino
 * writes what is left synchronously; only a SIGKILL or a power loss can
 * lose the last quarter second of lines. Audit events never go through the
 * log: they are in the database before any answer. `destination` replaces
 * stdout (tests read the lines).
 */
export function serviceLoggerOptions(level: string, destination?: pino.DestinationStream): NonNullable<FastifyServerOptions['logger']> {
  const { stream, access } = destination ? { stream: destination, access: new AccessLines(destination) } : bufferedStdout();
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: { req: requestLogView },
    stream,
    // Access lines collected so far go first (AccessLines).
    hooks: {
      streamWrite: (line: string): string => {
        access.flush();
        return line;
      },
    },
    [SERVICE_LOGGER]: access,
  } as NonNullable<FastifyServerOptions['logger']>;
}

/** pino's level number for `info`. */
const INFO = 30;

interface PinoInternals {
  levelVal: number;
  [pino.symbols.chindingsSym]: string;
}

/**
 * Fastify logs each request twice ("incoming request", then "request
 * completed"). Performance (issue 9): this keeps one line, at completion,
 * carrying what both carried: request id, the request (method, URL with
 * sensitive query values redacted, host, remote address and port), status and
 * response time. Failed requests and every other line go through the
 * redacting pino logger as before.
 *
 * The line holds only those allow-listed fields (never a header or a body
 * field), so it needs no redaction pass. With the service's own logger
 * (`serviceLoggerOptions`) it is written as text straight to pino's
 * destination, in pino's format (level, time, pid, hostname, the fields,
 * msg): pino's generic path (serializers, the redaction pass, the stringifier
 * and its cycle checks) cost 6–8 µs per line, a third of a bare request.
 * test/http/access-log.test.ts compares it with the line pino writes. With
 * any other logger (tests' own) the line goes through pino.
 *
 * Fastify calls `requestCompleted` once per finished response, so the HTTP
 * metrics are counted here too (`countWith`) instead of in an `onResponse`
 * hook of their own.
 */
export class OneLineRequestLog extends LogController {
  private access: FastifyBaseLogger | null = null;
  private root: (FastifyBaseLogger & PinoInternals) | null = null;
  private lines: AccessLines | null = null;
  private count: ((request: FastifyRequest, reply: FastifyReply) => void) | null = null;

  /** Also call `count` for every finished request (whatever the log level). */
  countWith(count: (request: FastifyRequest, reply: FastifyReply) => void): void {
    this.count = count;
  }

  /** Called once the app's logger exists; `options` are the logger options it was made from. */
  attach(logger: FastifyBaseLogger, options: unknown): void {
    this.access = logger.child({}, { redact: { paths: [] }, serializers: { req: requestLogView, res: (reply: FastifyReply) => ({ statusCode: reply.statusCode }) } });
    const internals = logger as FastifyBaseLogger & Partial<PinoInternals>;
    const lines = typeof options === 'object' && options !== null ? (options as { [SERVICE_LOGGER]?: unknown })[SERVICE_LOGGER] : undefined;
    if (lines instanceof AccessLines && typeof internals[pino.symbols.chindingsSym] === 'string') {
      this.root = logger as FastifyBaseLogger & PinoInternals;
      this.lines = lines;
    }
  }

  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    this.count?.(request, reply);
    if (error) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    else if (this.root && this.lines) this.writeAccessLine(this.root, this.lines, request, reply);
    else (this.access ?? reply.log).info({ reqId: request.id, req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }

  /** The access line as pino would write it through `access` (same keys, same order, same values). */
  private writeAccessLine(root: FastifyBaseLogger & PinoInternals, lines: AccessLines, request: FastifyRequest, reply: FastifyReply): void {
    if (root.levelVal > INFO) return;
    const view = requestLogView(request);
    const port = view.remotePort === undefined ? '' : `,"remotePort":${view.remotePort}`;
    const line =
      `{"level":${INFO},"time":${Date.now()}${root[pino.symbols.chindingsSym]},"reqId":${JSON.stringify(request.id)}` +
      `,"req":{"method":${JSON.stringify(view.method)},"url":${JSON.stringify(view.url)},"host":${JSON.stringify(view.host)},"remoteAddress":${JSON.stringify(view.remoteAddress)}${port}}` +
      `,"res":{"statusCode":${reply.statusCode}},"responseTime":${reply.elapsedTime},"msg":"request completed"}\n`;
    lines.add(line);
  }
}

type Bindings = Parameters<FastifyBaseLogger['child']>[0];
type ChildOptions = NonNullable<Parameters<FastifyBaseLogger['child']>[1]>;
type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/**
 * `request.log`, made on first use. Fastify gives every request a pino child
 * logger bound to its request id; making one runs pino's redaction over the
 * bindings, 2–3 µs per request, and most requests never log anything but
 * the access line (which has its own logger, above). This stands in for the
 * child and makes it the first time a line is logged: the same logger, the
 * same bindings, the same output.
 */
class LazyRequestLogger implements FastifyBaseLogger {
  private made: FastifyBaseLogger | null = null;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildOptions,
  ) {}

  private get real(): FastifyBaseLogger {
    return (this.made ??= this.parent.child(this.bindings, this.options));
  }

  get level(): string {
    return this.made?.level ?? this.options.level ?? this.parent.level;
  }

  set level(level: string) {
    this.real.level = level;
  }

  private forward(level: Level, args: unknown[]): void {
    (this.real[level] as (...a: unknown[]) => void)(...args);
  }

  fatal: FastifyBaseLogger['fatal'] = (...args: unknown[]) => this.forward('fatal', args);
  error: FastifyBaseLogger['error'] = (...args: unknown[]) => this.forward('error', args);
  warn: FastifyBaseLogger['warn'] = (...args: unknown[]) => this.forward('warn', args);
  info: FastifyBaseLogger['info'] = (...args: unknown[]) => this.forward('info', args);
  debug: FastifyBaseLogger['debug'] = (...args: unknown[]) => this.forward('debug', args);
  trace: FastifyBaseLogger['trace'] = (...args: unknown[]) => this.forward('trace', args);
  silent: FastifyBaseLogger['silent'] = () => {};

  child(bindings: Bindings, options?: ChildOptions): FastifyBaseLogger {
    return this.real.child(bindings, options);
  }
}

/** Fastify's `childLoggerFactory`: the per-request logger, made lazily. */
export function lazyChildLogger(logger: FastifyBaseLogger, bindings: Bindings, options: ChildOptions): FastifyBaseLogger {
  return new LazyRequestLogger(logger, bindings, options);
}
