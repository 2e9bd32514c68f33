import type { FastifyReply } from 'fastify';

/**
 * After a body over the limit has been refused (`413 payload_too_large`),
 * let the client finish sending it.
 *
 * Fastify answers the 413 with `Connection: close`, and Node then closes
 * the socket at once with the rest of the body still unread. Closing a TCP
 * socket with unread data makes the kernel send a reset (RFC 1122
 * §4.2.2.13), and a client that sends its whole body before it reads (most
 * HTTP libraries) gets a broken pipe and never sees the answer. Without the
 * `Connection: close`, Node keeps the connection and reads the rest of the
 * body, throwing it away (`IncomingMessage._dump`), so the client reads the
 * 413 when it is done sending — and may reuse the connection.
 *
 * Bounded: the whole request, the discarded part included, must still
 * arrive within `REQUEST_TIMEOUT_MS` (SECURITY.md "timeouts"); after that
 * Node closes the connection. Nothing of the discarded part is buffered.
 */
export function drainRefusedBody(reply: FastifyReply): void {
  if (!reply.request.raw.complete) reply.removeHeader('connection');
}
