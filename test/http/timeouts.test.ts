/**
 * Slow clients (SECURITY.md "timeouts"; OWASP Denial of Service Cheat Sheet:
 * Slowloris and slow-body attacks). Attack covered: a client that sends its
 * headers, or a chunked body, a byte at a time — or opens keep-alive
 * connections and sends nothing — to hold every connection of the server.
 * Each must be closed (after a `408` where one can still be sent) once the
 * configured timeout has passed.
 *
 * The timeouts are set small (a few hundred ms) and each client keeps going
 * for far longer (`GIVE_UP_MS`): the test checks WHO ends the connection
 * (the server, before the client gives up), not how fast.
 */
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.js';

let t: TestApp;
let port: number;
const GIVE_UP_MS = 8_000;

beforeAll(async () => {
  t = await buildTestApp({ env: { REQUEST_TIMEOUT_MS: '600', HEADERS_TIMEOUT_MS: '300', KEEP_ALIVE_TIMEOUT_MS: '300' } });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  port = (t.app.server.address() as AddressInfo).port;
});
afterAll(async () => {
  await t.close();
});

interface Outcome {
  /** True when the server ended the connection before the client gave up. */
  closedByServer: boolean;
  /** Everything the server sent. */
  received: string;
}

/**
 * Open a connection, send `start`, then one `drip` every 50 ms until the
 * server closes the connection or `GIVE_UP_MS` passes.
 */
function slowClient(start: string, drip: string | null): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let received = '';
    let finished = false;
    const finish = (closedByServer: boolean): void => {
      if (finished) return;
      finished = true;
      clearInterval(dripping);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ closedByServer, received });
    };
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    // A reset or a write to a closed connection is the server ending it too.
    socket.on('error', () => finish(true));
    socket.write(start);
    const dripping = setInterval(() => {
      if (drip !== null && !socket.destroyed) socket.write(drip);
    }, 50);
    const giveUp = setTimeout(() => finish(false), GIVE_UP_MS);
  });
}

/** The status lines of the responses the server sent. */
function statuses(received: string): string[] {
  return [...received.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1] ?? '');
}

describe('slow clients are cut off', () => {
  it('headers sent a byte at a time: 408, then the connection is closed', async () => {
    const outcome = await slowClient('GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-slow: ', 'a');
    expect(outcome.closedByServer).toBe(true);
    expect(statuses(outcome.received)).toEqual(['408']);
  });

  it('a chunked body trickling in: 408, then the connection is closed', async () => {
    const head = 'POST /v1/login HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n1\r\n{\r\n';
    const outcome = await slowClient(head, '1\r\n \r\n');
    expect(outcome.closedByServer).toBe(true);
    expect(statuses(outcome.received)).toEqual(['408']);
  });

  it('a body shorter than its content-length: 408, then the connection is closed', async () => {
    const outcome = await slowClient('POST /v1/login HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"a', null);
    expect(outcome.closedByServer).toBe(true);
    expect(statuses(outcome.received)).toEqual(['408']);
  });

  it('a refused oversized body (413) is read only until the request timeout, then the connection is closed', async () => {
    const head = `POST /v1/login HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${10 * 1024 * 1024 * 1024}\r\n\r\n`;
    const outcome = await slowClient(head, 'x'.repeat(1024));
    expect(outcome.closedByServer).toBe(true);
    expect(statuses(outcome.received)[0]).toBe('413');
  });

  it('a connection that opens and sends nothing is closed', async () => {
    const outcome = await slowClient('', null);
    expect(outcome.closedByServer).toBe(true);
  });

  it('an idle keep-alive connection is closed after its answer', async () => {
    const outcome = await slowClient('GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n', null);
    expect(outcome.closedByServer).toBe(true);
    expect(statuses(outcome.received)).toEqual(['200']);
  });
});
