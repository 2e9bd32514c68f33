/**
 * Oversized bodies over a real socket (API.md: `413 payload_too_large`;
 * SECURITY.md "body limits"). A client that sends its whole body before it
 * reads (most HTTP libraries) must still get the 413. Defect covered: the
 * server answered and closed the connection at once, with the rest of the
 * body unread; the kernel then reset the connection, and such a client saw
 * a broken pipe instead of the answer. `app.inject` cannot show this: only
 * a real socket, and a body larger than the kernel's buffers, can.
 */
import { connect, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.js';

let t: TestApp;
let port: number;

beforeAll(async () => {
  t = await buildTestApp();
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  port = (t.app.server.address() as AddressInfo).port;
});
afterAll(async () => {
  await t.close();
});

/** Far above the 64 KiB limit, and above what loopback socket buffers absorb. */
const BIG = 24 * 1024 * 1024;

interface Answer {
  /** The error the client got while sending (EPIPE, ECONNRESET), or null. */
  writeError: string | null;
  status: number | null;
  headers: Record<string, string>;
  body: string;
}

/**
 * Send `head` and `body` completely (the way a blocking client does), and
 * only then read the answer.
 */
function sendAllThenRead(head: string, body: Buffer): Promise<Answer> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.pause();
    let writeError: string | null = null;
    let raw = Buffer.alloc(0);
    const done = (): void => {
      socket.destroy();
      const text = raw.toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const headLines = (split === -1 ? text : text.slice(0, split)).split('\r\n');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(headLines[0] ?? '');
      const headers: Record<string, string> = {};
      for (const line of headLines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ writeError, status: status ? Number(status[1]) : null, headers, body: split === -1 ? '' : text.slice(split + 4) });
    };
    socket.on('error', (error: NodeJS.ErrnoException) => {
      writeError ??= error.code ?? error.message;
      done();
    });
    socket.on('data', (chunk: Buffer) => {
      raw = Buffer.concat([raw, chunk]);
      const text = raw.toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: (\d+)/i.exec(text.slice(0, split));
      if (split !== -1 && length && raw.length >= split + 4 + Number(length[1])) done();
    });
    socket.on('close', done);
    socket.write(head);
    socket.write(body, (error) => {
      if (error) return;
      // Everything was sent: now read, as a blocking client does.
      socket.resume();
    });
  });
}

function chunked(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < body.length; i += 64 * 1024) {
    const piece = body.subarray(i, i + 64 * 1024);
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

const jsonBody = Buffer.from(JSON.stringify({ email: 'a@example.com', password: 'x'.repeat(BIG) }));
const formBody = Buffer.from(`email=a%40example.com&password=${'x'.repeat(BIG)}`);

describe('a body over the limit is answered 413, also to a client that sends it all first', () => {
  it.each([
    ['with content-length', true],
    ['chunked', false],
  ] as const)('JSON to /v1/login, %s: 413 problem+json payload_too_large', async (_label, withLength) => {
    const framing = withLength ? `content-length: ${jsonBody.length}` : 'transfer-encoding: chunked';
    const answer = await sendAllThenRead(
      `POST /v1/login HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n${framing}\r\n\r\n`,
      withLength ? jsonBody : chunked(jsonBody),
    );
    expect(answer.writeError).toBeNull();
    expect(answer.status).toBe(413);
    expect(answer.headers['content-type']).toContain('application/problem+json');
    expect(JSON.parse(answer.body)).toMatchObject({ status: 413, code: 'payload_too_large' });
  });

  it.each([
    ['with content-length', true],
    ['chunked', false],
  ] as const)('a form to the /login page, %s: a 413 page', async (_label, withLength) => {
    const framing = withLength ? `content-length: ${formBody.length}` : 'transfer-encoding: chunked';
    const answer = await sendAllThenRead(
      `POST /login HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/x-www-form-urlencoded\r\n${framing}\r\n\r\n`,
      withLength ? formBody : chunked(formBody),
    );
    expect(answer.writeError).toBeNull();
    expect(answer.status).toBe(413);
    expect(answer.headers['content-type']).toContain('text/html');
    expect(answer.body).toContain('The form is too large');
  });

  it('keeps the connection usable once the refused body has been read', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        if ((text.match(/HTTP\/1\.1 /g) ?? []).length === 2 && text.endsWith('{"status":"ok"}')) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
      socket.write(`POST /v1/login HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${jsonBody.length}\r\n\r\n`);
      socket.write(jsonBody);
      socket.write('GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n');
    });
    expect([...answer.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1])).toEqual(['413', '200']);
  });
});
