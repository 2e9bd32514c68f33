import type { FastifyInstance } from 'fastify';
import { validationFailed, type AppError } from '../platform/errors.js';

/**
 * Text at the edge (issue 23 item 19): every string the service accepts —
 * in a JSON body, a form body, the query string or the path — is valid
 * Unicode, or the request is `400 validation_failed`.
 *
 * - Bytes that are not UTF-8 (RFC 8259 §8.1: JSON text is UTF-8; RFC 3986
 *   §2.5 and the WHATWG URL standard: percent-encoded octets are UTF-8) are
 *   refused. Decoding them leniently, as Node does by default, turned them
 *   into U+FFFD and stored the damage.
 * - Unpaired UTF-16 surrogates (`"\ud800"` in JSON) are refused: they are
 *   not Unicode scalar values, cannot be encoded as UTF-8 and broke later
 *   steps (a 500 when one reached an audit reason).
 *
 * Checked once here, before any schema or handler sees the value, so no
 * route can forget it (OWASP ASVS 5.0 1.2: canonical input; CWE-176).
 */

/** `fatal`: throw instead of substituting U+FFFD. `ignoreBOM`: keep a BOM, as Node's decoding did (JSON.parse then refuses it). */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A code point in the surrogate range: in a `u` regex only an UNPAIRED surrogate is one. */
const LONE_SURROGATE = /\p{Cs}/u;

const NOT_UTF8 = 'is not valid UTF-8';
const NOT_UNICODE = 'must be valid Unicode text (it holds an unpaired surrogate)';

/** The bytes as UTF-8 text, or null when they are not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return UTF8.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * The dotted path (`members.2.name`) of the first string or key in `value`
 * holding an unpaired surrogate, or null when there is none. Iterative, so
 * a deeply nested body cannot exhaust the stack.
 */
export function illFormedTextPath(value: unknown): string | null {
  const pending: { value: unknown; path: string }[] = [{ value, path: '' }];
  const join = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);
  while (pending.length > 0) {
    const { value: current, path } = pending.pop()!;
    if (typeof current === 'string') {
      if (LONE_SURROGATE.test(current)) return path === '' ? 'body' : path;
    } else if (Array.isArray(current)) {
      current.forEach((item, index) => pending.push({ value: item, path: join(path, String(index)) }));
    } else if (current !== null && typeof current === 'object') {
      for (const [key, item] of Object.entries(current)) {
        if (LONE_SURROGATE.test(key)) return join(path, key);
        pending.push({ value: item, path: join(path, key) });
      }
    }
  }
  return null;
}

/**
 * True when every `%XX` escape of `text` decodes to UTF-8. A `%` not
 * followed by two hex digits is a literal percent sign (as in browsers), not
 * an error.
 */
export function percentEscapesAreUtf8(text: string): boolean {
  if (!text.includes('%')) return true;
  try {
    // decodeURIComponent throws URIError exactly on escapes that are not UTF-8.
    decodeURIComponent(text.replace(/%(?![0-9A-Fa-f]{2})/g, '%25'));
    return true;
  } catch {
    return false;
  }
}

/**
 * An `application/x-www-form-urlencoded` body as fields (a repeated name
 * becomes an array, as with @fastify/formbody), or the refusal when its
 * bytes or escapes are not UTF-8. Decoding valid escapes cannot produce an
 * unpaired surrogate, so nothing else needs checking.
 */
export function parseUrlencoded(bytes: Uint8Array): { fields: URLSearchParams } | { refusal: AppError } {
  const text = decodeUtf8(bytes);
  if (text === null || !percentEscapesAreUtf8(text)) return { refusal: validationFailed([{ field: 'body', message: NOT_UTF8 }]) };
  return { fields: new URLSearchParams(text) };
}

/** Fields of a parsed form or query: one value, or an array when the name repeats. */
export function fieldsObject(params: URLSearchParams): Record<string, string | string[]> {
  const fields: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (const [name, value] of params) {
    const seen = fields[name];
    fields[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return fields;
}

/** Query objects whose string was not valid UTF-8; the `onRequest` hook refuses their requests. */
const INVALID_QUERIES = new WeakSet<object>();

/**
 * Fastify's `querystringParser`: URLSearchParams semantics, and a query
 * string whose escapes are not UTF-8 is remembered as invalid (a parser
 * cannot answer the request itself) instead of being kept as raw `%FF`
 * text, as Fastify's default parser did.
 */
export function parseQuerystring(text: string): Record<string, string | string[]> {
  if (!percentEscapesAreUtf8(text)) {
    const empty = Object.create(null) as Record<string, string | string[]>;
    INVALID_QUERIES.add(empty);
    return empty;
  }
  return fieldsObject(new URLSearchParams(text));
}

/**
 * The JSON body parser (replacing Fastify's, whose parsing, prototype-
 * poisoning refusal and `malformed_body` errors it keeps) and the query
 * string check. Registered on the root instance, so every scope inherits
 * both; the pages' and the SAML ACS's form parsers use `parseUrlencoded`.
 */
export function registerTextRules(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const text = decodeUtf8(body as Buffer);
    if (text === null) {
      done(validationFailed([{ field: 'body', message: NOT_UTF8 }]), undefined);
      return;
    }
    parseJson(request, text, (error, value) => {
      if (error) return done(error, undefined);
      // Valid UTF-8 holds no surrogate code units, so only a `\u` escape can make a lone one.
      const bad = text.includes('\\u') ? illFormedTextPath(value) : null;
      if (bad !== null) return done(validationFailed([{ field: bad, message: NOT_UNICODE }]), undefined);
      done(null, value);
    });
  });
  // Synchronous (callback) hook: one WeakSet lookup per request (issue 9).
  app.addHook('onRequest', (request, _reply, done) => {
    if (INVALID_QUERIES.has(request.query as object)) return done(validationFailed([{ field: 'querystring', message: NOT_UTF8 }]));
    done();
  });
}
