import type { FastifyRequest } from 'fastify';

/**
 * Query parameters whose values never reach the logs (SECURITY.md "logs":
 * no codes, tokens or OIDC/SAML payloads; emails are personal data).
 * The OIDC callback carries `code` and `state` in its URL; sign-in starts
 * carry an email.
 */
const SENSITIVE_QUERY_PARAMS = new Set([
  'code', 'state', 'nonce', 'token', 'id_token', 'access_token', 'refresh_token', 'session_state',
  'email', 'login_hint', 'samlresponse', 'samlrequest', 'relaystate',
]);

/** `url` with the values of sensitive query parameters replaced by `[redacted]`. */
export function redactUrl(url: string): string {
  const at = url.indexOf('?');
  if (at === -1) return url;
  const params = new URLSearchParams(url.slice(at + 1));
  let changed = false;
  for (const name of new Set(params.keys())) {
    if (SENSITIVE_QUERY_PARAMS.has(name.toLowerCase())) {
      params.set(name, '[redacted]');
      changed = true;
    }
  }
  return changed ? `${url.slice(0, at)}?${params.toString()}` : url;
}

/** pino `req` serializer: Fastify's default fields, with the URL redacted. */
export function requestLogView(request: FastifyRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: redactUrl(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}
