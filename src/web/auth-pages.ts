import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../app.js';
import { AppError } from '../platform/errors.js';
import type { User } from '../users/user.js';
import { clearMfaCookie, clearSessionCookie, mfaCookieOf, setMfaCookie, setSessionCookie } from '../http/cookies.js';
import { userOf } from '../http/policy.js';
import { Email, OpaqueToken, OrgName, Password, PersonName } from '../http/schemas.js';
import { setSsoCookie, ssoCookieOf } from '../sso/binding-cookie.js';
import { safeReturnTo } from '../sso/state/return-to.js';
import { Checkbox, formBody, formFailure, validationFailure, type FormFailure } from './forms.js';
import { renderPage, seeOther, SIGNED_OUT } from './render.js';

const ReturnTo = Type.Optional(Type.String({ maxLength: 1024 }));
const ReturnQuery = Type.Object({ returnTo: ReturnTo, done: Type.Optional(Type.String({ maxLength: 40 })) });
const TokenQuery = Type.Object({ token: Type.Optional(Type.String({ maxLength: 256 })), done: Type.Optional(Type.String({ maxLength: 40 })) });

const SignupForm = formBody({ orgName: OrgName, name: PersonName, email: Email, password: Password, ageConfirmed: Checkbox });
const LoginForm = formBody({ email: Email, password: Password, returnTo: ReturnTo });
const SsoForm = formBody({ email: Email, returnTo: ReturnTo });
const MfaForm = formBody({ code: Type.Optional(Type.String({ maxLength: 20 })), recoveryCode: Type.Optional(Type.String({ maxLength: 40 })), returnTo: ReturnTo });
const ResetRequestForm = formBody({ email: Email });
const ResetConfirmForm = formBody({ token: OpaqueToken, newPassword: Password });
const AcceptForm = formBody({ token: OpaqueToken, name: PersonName, password: Password, ageConfirmed: Checkbox });

/** Where a person lands after logging in: the page they asked for, else their home. */
export function landingFor(user: User, returnTo: string | undefined, publicUrl: URL): string {
  const safe = returnTo === undefined ? null : safeReturnTo(returnTo, publicUrl);
  if (safe !== null && safe !== '/' && !safe.startsWith('/login')) return safe;
  return user.orgId === null ? '/staff' : '/account';
}

/** Say at once that the 16+ box is unticked, not only after the other fields are right. */
function withAgeCheck(failure: FormFailure, body: unknown): FormFailure {
  const ticked = (body as { ageConfirmed?: unknown } | undefined)?.ageConfirmed === 'yes';
  if (!ticked) failure.fields.ageConfirmed ??= 'You must be 16 or older to use this service.';
  return failure;
}

/** A 6-digit code as typed (spaces and dashes allowed), or null. */
export function normalizeCode(input: string | undefined): string | null {
  const digits = (input ?? '').replace(/[\s-]/g, '');
  return /^[0-9]{6}$/.test(digits) ? digits : null;
}

/**
 * Sign-up, login (password, second factor, "continue with SSO"), logout,
 * password reset and invitation acceptance.
 */
export function authPages(scope: FastifyInstance, services: Services): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const cookies = { secure: services.config.secureCookies };
  const csrf = { preValidation: scope.csrfProtection, attachValidation: true } as const;
  const credentialLimit = { rateLimit: { max: services.config.rateLimitPerIpPerMinute, timeWindow: 60_000 } };
  const publicUrl = services.config.publicUrl;

  app.get('/', { config: { auth: 'user' }, schema: { hide: true } }, async (request, reply) => {
    const { user } = userOf(request);
    return seeOther(reply, user.orgId === null ? '/staff' : '/account');
  });

  // --- Sign up -------------------------------------------------------------
  const signupPage = (request: FastifyRequest, reply: FastifyReply, failed: FormFailure | null = null) =>
    renderPage(request, reply, 'signup', { title: 'Create your organization' }, { failed, nav: SIGNED_OUT });

  app.get('/signup', { schema: { hide: true } }, async (request, reply) => signupPage(request, reply));

  app.post('/signup', { ...csrf, config: credentialLimit, schema: { hide: true, body: SignupForm } }, async (request, reply) => {
    const invalid = validationFailure(request, 'signup');
    if (invalid) return signupPage(request, reply, withAgeCheck(invalid, request.body));
    const body = request.body;
    try {
      const result = await services.orgs.signup({
        orgName: body.orgName,
        name: body.name,
        email: body.email,
        password: body.password,
        ageConfirmed: body.ageConfirmed === 'yes',
        context: request.requestContext,
      });
      setSessionCookie(reply, cookies, result.session);
      return seeOther(reply, '/account');
    } catch (error) {
      const failed = formFailure(error, 'signup', body);
      if (!failed) throw error;
      return signupPage(request, reply, failed);
    }
  });

  // --- Log in --------------------------------------------------------------
  interface LoginView {
    returnTo: string;
    ssoUrl: string | null;
  }
  const loginPage = (request: FastifyRequest, reply: FastifyReply, view: LoginView, failed: FormFailure | null = null) =>
    renderPage(request, reply, 'login', { title: 'Log in', ...view }, { failed, nav: SIGNED_OUT });

  app.get('/login', { schema: { hide: true, querystring: ReturnQuery } }, async (request, reply) =>
    loginPage(request, reply, { returnTo: safeReturnTo(request.query.returnTo, publicUrl) ?? '/', ssoUrl: null }),
  );

  app.post('/login', { ...csrf, config: credentialLimit, schema: { hide: true, body: LoginForm } }, async (request, reply) => {
    const returnTo = safeReturnTo(typeof request.body?.returnTo === 'string' ? request.body.returnTo : undefined, publicUrl) ?? '/';
    const invalid = validationFailure(request, 'login');
    if (invalid) return loginPage(request, reply, { returnTo, ssoUrl: null }, invalid);
    try {
      const result = await services.passwords.login(request.body.email, request.body.password, request.requestContext);
      switch (result.kind) {
        case 'session':
          setSessionCookie(reply, cookies, result.session);
          return seeOther(reply, landingFor(result.user, returnTo, publicUrl));
        case 'mfa_required':
          setMfaCookie(reply, cookies, result.pendingToken, result.expiresAt);
          return seeOther(reply, returnTo === '/' ? '/login/mfa' : `/login/mfa?returnTo=${encodeURIComponent(returnTo)}`);
        case 'sso_required':
          return loginPage(request, reply, { returnTo, ssoUrl: result.ssoUrl }, {
            form: 'login',
            status: 403,
            message: 'Your organization requires single sign-on. Continue with your identity provider.',
            fields: {},
            values: { email: request.body.email },
          });
      }
    } catch (error) {
      const failed = formFailure(error, 'login', request.body);
      if (!failed) throw error;
      return loginPage(request, reply, { returnTo, ssoUrl: null }, failed);
    }
  });

  // "Continue with SSO": home-realm discovery by the email's verified domain.
  // The answer is a page that links on to the identity provider: CSP
  // form-action 'self' forbids a form submission from redirecting off-site.
  app.post('/login/sso', { ...csrf, config: credentialLimit, schema: { hide: true, body: SsoForm } }, async (request, reply) => {
    const returnTo = safeReturnTo(typeof request.body?.returnTo === 'string' ? request.body.returnTo : undefined, publicUrl) ?? '/';
    const invalid = validationFailure(request, 'sso');
    if (invalid) return loginPage(request, reply, { returnTo, ssoUrl: null }, invalid);
    try {
      const started = await services.ssoLogin.start({
        email: request.body.email,
        returnTo: returnTo === '/' ? '/account' : returnTo,
        bindingToken: ssoCookieOf(request, cookies),
      });
      setSsoCookie(reply, cookies, started.bindingToken, started.expiresAt);
      return renderPage(request, reply, 'sso-redirect', { title: 'Continue to your identity provider', redirectUrl: started.redirectUrl }, { nav: SIGNED_OUT });
    } catch (error) {
      const failed = formFailure(error, 'sso', request.body);
      if (!failed) throw error;
      if (failed.status === 404) failed.fields.email = 'Single sign-on is not set up for this email address. Log in with your password instead.';
      return loginPage(request, reply, { returnTo, ssoUrl: null }, failed);
    }
  });

  // --- Second factor -------------------------------------------------------
  const mfaPage = (request: FastifyRequest, reply: FastifyReply, returnTo: string, failed: FormFailure | null = null) =>
    renderPage(request, reply, 'login-mfa', { title: 'Two-factor authentication', returnTo }, { failed, nav: SIGNED_OUT });

  app.get('/login/mfa', { schema: { hide: true, querystring: ReturnQuery } }, async (request, reply) => {
    if (mfaCookieOf(request, cookies) === undefined) return seeOther(reply, '/login');
    return mfaPage(request, reply, safeReturnTo(request.query.returnTo, publicUrl) ?? '/');
  });

  app.post('/login/mfa', { ...csrf, config: credentialLimit, schema: { hide: true, body: MfaForm } }, async (request, reply) => {
    const returnTo = safeReturnTo(typeof request.body?.returnTo === 'string' ? request.body.returnTo : undefined, publicUrl) ?? '/';
    const invalid = validationFailure(request, 'mfa');
    if (invalid) return mfaPage(request, reply, returnTo, invalid);
    const { code: codeInput, recoveryCode } = request.body;
    const usingRecovery = recoveryCode !== undefined && recoveryCode.trim() !== '';
    const form = usingRecovery ? 'recovery' : 'mfa';
    const code = normalizeCode(codeInput);
    if (!usingRecovery && code === null) {
      return mfaPage(request, reply, returnTo, { form, status: 400, message: 'Enter the 6-digit code from your authenticator app.', fields: { code: 'Enter the 6 digits shown in your app.' }, values: {} });
    }
    try {
      const result = await services.totp.completeLogin(mfaCookieOf(request, cookies), usingRecovery ? { recoveryCode: recoveryCode.trim() } : { code: code ?? '' }, request.requestContext);
      clearMfaCookie(reply, cookies);
      setSessionCookie(reply, cookies, result.session);
      return seeOther(reply, landingFor(result.user, returnTo, publicUrl));
    } catch (error) {
      const failed = formFailure(error, form, request.body);
      if (!failed) throw error;
      if (error instanceof AppError && error.code === 'invalid_code') {
        if (error.publicDetail === undefined) {
          failed.fields[usingRecovery ? 'recoveryCode' : 'code'] = usingRecovery
            ? 'This recovery code is not valid or was already used.'
            : 'This code is not valid. Wait for the next code and try again.';
        } else {
          // The pending sign-in is gone (expired or too many wrong codes): start again.
          clearMfaCookie(reply, cookies);
          return seeOther(reply, '/login?done=mfa-expired');
        }
      }
      return mfaPage(request, reply, returnTo, failed);
    }
  });

  app.post('/logout', { preValidation: scope.csrfProtection, config: { auth: 'user', duringMfaEnrolment: true }, schema: { hide: true } }, async (request, reply) => {
    const { session, user } = userOf(request);
    await services.sessions.revoke(user, session.id, 'auth.logout', request.requestContext);
    clearSessionCookie(reply, cookies);
    return seeOther(reply, '/login?done=logged-out');
  });

  // --- Password reset ------------------------------------------------------
  app.get('/password-reset', { schema: { hide: true, querystring: TokenQuery } }, async (request, reply) => {
    const token = request.query.token;
    if (token !== undefined && token !== '') {
      return renderPage(request, reply, 'password-reset-confirm', { title: 'Choose a new password', token }, { nav: SIGNED_OUT });
    }
    return renderPage(request, reply, 'password-reset-request', { title: 'Reset your password', sent: false }, { nav: SIGNED_OUT });
  });

  app.post('/password-reset', { ...csrf, config: credentialLimit, schema: { hide: true, body: ResetRequestForm } }, async (request, reply) => {
    const invalid = validationFailure(request, 'reset');
    if (invalid) return renderPage(request, reply, 'password-reset-request', { title: 'Reset your password', sent: false }, { failed: invalid, nav: SIGNED_OUT });
    await services.passwords.requestReset(request.body.email, request.requestContext);
    // Always the same answer (no account enumeration).
    return renderPage(request, reply, 'password-reset-request', { title: 'Check your email', sent: true }, { nav: SIGNED_OUT });
  });

  app.post('/password-reset/confirm', { ...csrf, config: credentialLimit, schema: { hide: true, body: ResetConfirmForm } }, async (request, reply) => {
    const token = typeof request.body?.token === 'string' ? request.body.token : '';
    const page = (failed: FormFailure) => renderPage(request, reply, 'password-reset-confirm', { title: 'Choose a new password', token }, { failed, nav: SIGNED_OUT });
    const invalid = validationFailure(request, 'reset-confirm');
    if (invalid) {
      if (invalid.fields.token) invalid.message = 'This reset link is not valid. Ask for a new one.';
      return page(invalid);
    }
    try {
      await services.passwords.confirmReset(request.body.token, request.body.newPassword, request.requestContext);
      return seeOther(reply, '/login?done=password-reset');
    } catch (error) {
      const failed = formFailure(error, 'reset-confirm', request.body);
      if (!failed) throw error;
      if (failed.fields.token) failed.message = 'This reset link is not valid, was already used or has expired. Ask for a new one.';
      return page(failed);
    }
  });

  // --- Invitations (the mailer links here) ----------------------------------
  app.get('/invitations/accept', { schema: { hide: true, querystring: TokenQuery } }, async (request, reply) =>
    renderPage(request, reply, 'invitation', { title: 'Join your organization', token: request.query.token ?? '' }, { nav: SIGNED_OUT }),
  );

  app.post('/invitations/accept', { ...csrf, config: credentialLimit, schema: { hide: true, body: AcceptForm } }, async (request, reply) => {
    const token = typeof request.body?.token === 'string' ? request.body.token : '';
    const page = (failed: FormFailure) => renderPage(request, reply, 'invitation', { title: 'Join your organization', token }, { failed, nav: SIGNED_OUT });
    const invalid = validationFailure(request, 'invitation');
    if (invalid) {
      withAgeCheck(invalid, request.body);
      if (invalid.fields.token) invalid.message = 'This invitation link is not valid. Ask for a new invitation.';
      return page(invalid);
    }
    try {
      const result = await services.orgs.acceptInvitation({
        token: request.body.token,
        name: request.body.name,
        password: request.body.password,
        ageConfirmed: request.body.ageConfirmed === 'yes',
        context: request.requestContext,
      });
      setSessionCookie(reply, cookies, result.session);
      return seeOther(reply, '/account');
    } catch (error) {
      const failed = formFailure(error, 'invitation', request.body);
      if (!failed) throw error;
      if (failed.fields.token) failed.message = 'This invitation is not valid, was already used or has expired. Ask for a new invitation.';
      return page(failed);
    }
  });
}
