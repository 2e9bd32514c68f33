import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ERROR_STATUS, validationFailed, type ErrorCode, type FieldError } from '../platform/errors.js';
import { drainRefusedBody } from './refused-body.js';

/**
 * The one place errors become RFC 9457 problem details. Library errors are
 * translated here; nothing internal (stack, SQL, paths) ever reaches a body.
 */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler(answerError);

  app.setNotFoundHandler((_request, reply) => {
    const body = { type: 'https://docs.cleverom.fi/problems/not_found', title: 'The resource was not found.', status: 404, code: 'not_found' };
    return reply.status(404).type('application/problem+json').send(JSON.stringify(body));
  });
}

/**
 * Fastify's `frameworkErrors`: errors raised before a route is found (a path
 * whose escapes do not decode, `FST_ERR_BAD_URL`) get the same problem
 * details as everything else.
 */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  void answerError(error, request, reply);
}

function answerError(error: FastifyError | AppError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const appError = toAppError(error);
  if (appError.status >= 500) {
    request.log.error({ err: error, reqId: request.id }, 'unexpected error');
  } else if (Object.keys(appError.detail).length > 0) {
    request.log.info({ code: appError.code, detail: appError.detail }, 'request refused');
  }
  for (const [name, value] of Object.entries(appError.headers)) reply.header(name, value);
  if (appError.code === 'payload_too_large') drainRefusedBody(reply);
  const body: Record<string, unknown> = {
    type: `https://docs.cleverom.fi/problems/${appError.code}`,
    title: appError.title,
    status: appError.status,
    code: appError.code,
    ...(appError.publicDetail === undefined ? {} : { detail: appError.publicDetail }),
    ...appError.extra,
    ...(appError.status >= 500 ? { requestId: request.id } : {}),
  };
  // SSO callbacks are browser navigations from the IdP: a person gets a page, not JSON.
  if (request.url.startsWith('/v1/sso/') && prefersHtml(request.headers.accept)) {
    return reply.status(appError.status).type('text/html; charset=utf-8').send(ssoErrorPage(appError));
  }
  return reply.status(appError.status).type('application/problem+json').send(JSON.stringify(body));
}

function prefersHtml(accept: string | undefined): boolean {
  return accept !== undefined && accept.includes('text/html') && !accept.includes('application/json');
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

function ssoErrorPage(error: AppError): string {
  const message = escapeHtml(error.publicDetail ?? error.title);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Single sign-on did not work — Cleverom</title><link rel="stylesheet" href="/assets/site.css"></head>
<body><main><h1>Single sign-on did not work</h1><p>${message}</p><p>Code: ${escapeHtml(error.code)}</p>
<p><a href="/login">Back to log in</a></p></main></body></html>`;
}

function toAppError(error: FastifyError | AppError | Error): AppError {
  if (error instanceof AppError) return error;
  const fe = error as FastifyError & { validation?: { instancePath?: string; params?: Record<string, unknown>; message?: string }[]; validationContext?: string };
  if (fe.validation) {
    const errors: FieldError[] = fe.validation.map((v) => ({
      field: fieldName(fe.validationContext, v),
      message: v.message ?? 'is invalid',
    }));
    return new AppError('validation_failed', { extra: { errors } });
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return new AppError('malformed_body');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('payload_too_large');
    case 'FST_ERR_BAD_URL':
      // The path's escapes are not UTF-8 (src/http/text.ts: text at the edge).
      return validationFailed([{ field: 'params', message: 'is not valid UTF-8' }]);
    default:
      break;
  }
  // Errors thrown by Fastify itself with a 4xx status (e.g. a bad URL) stay 4xx.
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code = codeForStatus(fe.statusCode);
    return new AppError(code, { detail: { fastifyCode: fe.code } });
  }
  return new AppError('internal', { cause: error });
}

function fieldName(context: string | undefined, v: { instancePath?: string; params?: Record<string, unknown> }): string {
  const path = (v.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  const missing = typeof v.params?.missingProperty === 'string' ? v.params.missingProperty : undefined;
  const extra = typeof v.params?.additionalProperty === 'string' ? v.params.additionalProperty : undefined;
  const leaf = missing ?? extra;
  const full = [path, leaf].filter((p) => p !== undefined && p !== '').join('.');
  return full === '' ? (context ?? 'body') : full;
}

function codeForStatus(status: number): ErrorCode {
  if (status === 413) return 'payload_too_large';
  if (status === 415) return 'malformed_body';
  if (status === 404) return 'not_found';
  if (status === 429) return 'rate_limited';
  const match = (Object.keys(ERROR_STATUS) as ErrorCode[]).find((c) => ERROR_STATUS[c] === status);
  return match ?? 'validation_failed';
}
