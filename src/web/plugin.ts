import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import csrfProtection from '@fastify/csrf-protection';
import view from '@fastify/view';
import { Eta } from 'eta';
import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../app.js';
import { drainRefusedBody } from '../http/refused-body.js';
import { fieldsObject, parseUrlencoded } from '../http/text.js';
import { AppError } from '../platform/errors.js';
import { safeReturnTo } from '../sso/state/return-to.js';
import { accountPages } from './account-pages.js';
import { adminPages } from './admin-pages.js';
import { authPages } from './auth-pages.js';
import { planMessage } from './forms.js';
import { renderPage, seeOther } from './render.js';
import { staffPages } from './staff-pages.js';

/** Templates and the stylesheet ship beside this file (`npm run build` copies them into dist/web). */
export const VIEWS_DIR = fileURLToPath(new URL('./views', import.meta.url));
const STYLESHEET = fileURLToPath(new URL('./assets/site.css', import.meta.url));

/**
 * Server-rendered pages for people (API.md "Pages"): sign-up, login, MFA,
 * password reset, invitations, account, organization admin and the staff
 * console. The pages call the same services as the JSON API; only the
 * presentation lives here.
 *
 * Everything is encapsulated in this plugin: the urlencoded body parser,
 * CSRF tokens (@fastify/csrf-protection, cookie-based: OWASP CSRF cheat
 * sheet "signed double submit" on top of the Origin check of policy.ts) and
 * an error handler that answers with HTML pages, so the `/v1` API keeps its
 * JSON-only parser and its problem+json errors.
 */
export function webPages(services: Services): FastifyPluginAsync {
  return async function pages(scope: FastifyInstance): Promise<void> {
    const secure = services.config.secureCookies;
    // Form bodies: strict UTF-8 (src/http/text.ts); a repeated name becomes an array, as with @fastify/formbody.
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer', bodyLimit: services.config.bodyLimitBytes }, (_request, body, done) => {
      const parsed = parseUrlencoded(body as Buffer);
      if ('refusal' in parsed) return done(parsed.refusal, undefined);
      done(null, fieldsObject(parsed.fields));
    });
    await scope.register(csrfProtection, {
      cookieKey: secure ? '__Host-cleverom_csrf' : 'cleverom_csrf',
      cookieOpts: { path: '/', sameSite: 'lax', httpOnly: true, secure },
      logLevel: 'info',
    });
    await scope.register(view, {
      engine: { eta: new Eta({ autoEscape: true, cache: true }) },
      root: VIEWS_DIR,
      production: true,
    });
    scope.setErrorHandler(pageErrorHandler);

    const stylesheet = readFileSync(STYLESHEET);
    scope.get('/assets/site.css', { schema: { hide: true } }, async (_request, reply) =>
      reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(stylesheet),
    );

    authPages(scope, services);
    accountPages(scope, services);
    adminPages(scope, services);
    staffPages(scope, services);
  };
}

/** The page a POST came from, for "log in again" / "confirm it's you" round trips. */
export function pageOf(url: string): string {
  const path = url.split('?')[0] ?? '/';
  const admin = /^\/orgs\/[A-Za-z0-9_-]+\/admin/.exec(path);
  if (admin) return admin[0];
  if (path.startsWith('/staff')) return '/staff';
  if (path.startsWith('/account')) return '/account';
  return '/';
}

function loginRedirect(request: FastifyRequest): string {
  const back = request.method === 'GET' ? request.url : pageOf(request.url);
  const returnTo = safeReturnTo(back, new URL('http://localhost'));
  return returnTo && returnTo !== '/' && !returnTo.startsWith('/login') ? `/login?returnTo=${encodeURIComponent(returnTo)}` : '/login';
}

/**
 * Errors that reach a page route (gates, CSRF, unexpected failures) become
 * HTML: a redirect where the person can act (log in, enrol two-factor,
 * confirm identity), else a short page that says what happened.
 */
async function pageErrorHandler(this: FastifyInstance, error: FastifyError | AppError | Error, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const code = error instanceof AppError ? error.code : (error as FastifyError).code;
  const reason = error instanceof AppError ? error.extra.reason : undefined;

  if (code === 'unauthenticated') return seeOther(reply, loginRedirect(request));
  if (code === 'forbidden' && reason === 'mfa_enrolment_required') return seeOther(reply, '/account/two-factor');
  if (code === 'reauthentication_required') {
    // Staff requests and decisions need a code, not a password (policy.ts, `fresh: 'second_factor'`): the page asks for one.
    const factor = reason === 'second_factor_required' ? '&factor=code' : '';
    return seeOther(reply, `/account/confirm?returnTo=${encodeURIComponent(request.method === 'GET' ? request.url : pageOf(request.url))}${factor}`);
  }

  let status: number;
  let heading: string;
  let detail: string;
  let link: { href: string; text: string } | null = { href: '/', text: 'Go to the start page' };
  if (code === 'FST_CSRF_MISSING_SECRET' || code === 'FST_CSRF_INVALID_TOKEN' || code === 'csrf_failed') {
    status = 403;
    heading = 'This form has expired';
    detail = 'The form was too old or did not come from this site. Go back, reload the page and try again.';
  } else if (error instanceof AppError && error.status < 500) {
    status = error.status;
    heading = error.title;
    detail = error.publicDetail ?? '';
    if (error.code === 'not_found' || (error.code === 'forbidden' && request.url.startsWith('/orgs/'))) {
      // Another organization's pages do not exist for you (tenant isolation: 404, never 403).
      status = 404;
      heading = 'Page not found';
      detail = 'There is nothing here, or you do not have access to it.';
    } else if (error.code === 'plan_required') {
      detail = planMessage(error);
    } else if (error.code === 'forbidden' && reason === 'aal2_required') {
      heading = 'Two-factor authentication needed';
      detail = 'The staff console needs a session with two-factor authentication. Set it up, then log out and log in again with your code.';
      link = { href: '/account/two-factor', text: 'Set up two-factor authentication' };
    } else if (error.code === 'access_grant_required') {
      detail = 'You need an active, approved access grant for this organization.';
      link = { href: '/staff', text: 'Back to the staff console' };
    } else if (error.code === 'rate_limited') {
      const retryAfter = typeof error.extra.retryAfter === 'number' ? error.extra.retryAfter : 60;
      detail = `Wait ${retryAfter} seconds, then try again.`;
      for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
    }
  } else if (typeof (error as FastifyError).statusCode === 'number' && (error as FastifyError).statusCode! < 500) {
    status = (error as FastifyError).statusCode!;
    heading = status === 413 ? 'The form is too large' : 'The request could not be handled';
    if (status === 413) drainRefusedBody(reply);
    detail = 'Go back and try again.';
  } else {
    request.log.error({ err: error, reqId: request.id }, 'unexpected error on a page');
    status = 500;
    heading = 'Something went wrong';
    detail = `Please try again. If it keeps happening, contact support and quote request ${request.id}.`;
  }
  try {
    return await renderPage(request, reply, 'error', { title: heading, heading, detail, link }, { status });
  } catch (renderError) {
    request.log.error({ err: renderError }, 'rendering the error page failed');
    return reply.code(status).type('text/plain; charset=utf-8').send(`${heading}. ${detail}`);
  }
}
