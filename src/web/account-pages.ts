import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../app.js';
import { describeDevice } from '../auth/session/routes.js';
import { clearSessionCookie, setSessionCookie } from '../http/cookies.js';
import { userOf } from '../http/policy.js';
import type { UserPrincipal } from '../http/principal.js';
import { Email, Id, OpaqueToken, Password, PersonName } from '../http/schemas.js';
import { AppError } from '../platform/errors.js';
import { safeReturnTo } from '../sso/state/return-to.js';
import { normalizeCode } from './auth-pages.js';
import { Checkbox, formBody, formFailure, planName, validationFailure, type FormFailure } from './forms.js';
import { formatTime, renderPage, seeOther } from './render.js';

const SessionParams = Type.Object({ sessionId: Id });
const PasswordForm = formBody({ currentPassword: Password, newPassword: Password });
const CodeForm = formBody({ code: Type.String({ maxLength: 20 }) });
const ConfirmForm = formBody({ password: Type.Optional(Type.String({ maxLength: 1024 })), code: Type.Optional(Type.String({ maxLength: 20 })), returnTo: Type.Optional(Type.String({ maxLength: 1024 })) });
const EnrolConfirmForm = formBody({ code: Type.String({ maxLength: 20 }), secret: Type.Optional(Type.String({ maxLength: 128, pattern: '^[A-Z2-7=]*$' })) });
const Empty = formBody({});
const ProfileForm = formBody({ name: PersonName, phone: Type.String({ maxLength: 32 }) });
const EmailForm = formBody({ email: Email });
const TokenForm = formBody({ token: OpaqueToken });
const ConsentsForm = formBody({ marketing: Checkbox, saleOrShare: Checkbox });
const DeleteForm = formBody({ understood: Checkbox, deleteOrganization: Checkbox });
/** API.md `PATCH /v1/me`: E.164 or a readable local form. */
const PHONE = /^\+?[0-9][0-9 ().-]{1,30}[0-9]$/;

interface SessionRow {
  id: string;
  current: boolean;
  device: string;
  ip: string;
  method: string;
  createdAt: string;
  lastSeenAt: string;
}

interface TwoFactorView {
  status: 'none' | 'pending' | 'confirmed';
  confirmedAt: string;
  recoveryCodesRemaining: number;
  /** The plan includes TOTP (staff always may enrol). */
  available: boolean;
  requiredPlan: string;
  /** The organization requires it and this account has none yet. */
  required: boolean;
}

const METHOD_NAMES: Record<string, string> = {
  password: 'Password',
  oidc: 'Single sign-on (OIDC)',
  saml: 'Single sign-on (SAML)',
  invitation: 'Invitation',
  signup: 'Sign-up',
  password_reset: 'Password reset',
};

/** The account page: profile, password, sessions and devices, two-factor authentication. */
export function accountPages(scope: FastifyInstance, services: Services): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const cookies = { secure: services.config.secureCookies };
  const csrf = { preValidation: scope.csrfProtection, attachValidation: true } as const;
  const credentialLimit = { rateLimit: { max: services.config.rateLimitPerIpPerMinute, timeWindow: 60_000 } };

  async function twoFactorOf(principal: UserPrincipal): Promise<TwoFactorView> {
    const status = await services.totp.status(principal.user);
    const available = principal.org === null ? principal.user.orgId === null : services.plans.has(principal.org.plan, 'mfa_totp');
    return {
      status: status.totp.status,
      confirmedAt: formatTime(status.totp.confirmedAt),
      recoveryCodesRemaining: status.recoveryCodesRemaining,
      available,
      requiredPlan: planName(services.plans.requiredPlanFor('mfa_totp')),
      required: (principal.org?.settings.requireMfa ?? false) && available && status.totp.status !== 'confirmed',
    };
  }

  async function sessionsOf(principal: UserPrincipal): Promise<SessionRow[]> {
    const now = services.clock.now().getTime();
    // Same listing as GET /v1/me/sessions: sessions still alive (not expired, not idle).
    return (await services.sessions.list(principal.user.id))
      .filter((s) => s.expiresAt.getTime() > now && now - s.lastSeenAt.getTime() < s.idleTimeoutMs)
      .map((s) => ({
        id: s.id,
        current: s.id === principal.session.id,
        device: describeDevice(s.userAgent),
        ip: s.ip ?? 'unknown',
        method: METHOD_NAMES[s.authMethod] ?? s.authMethod,
        createdAt: formatTime(s.createdAt),
        lastSeenAt: formatTime(s.lastSeenAt),
      }));
  }

  async function privacyOf(principal: UserPrincipal, request: FastifyRequest) {
    const { user, org } = principal;
    const consents = await services.privacy.consents(user, request.requestContext);
    const members = org ? await services.orgs.listMembers(org.id) : [];
    return {
      marketing: consents.marketing,
      saleOrShare: consents.saleOrShare,
      updatedAt: formatTime(consents.updatedAt),
      // The last owner may only leave with the organization, and only when nobody else is in it.
      soleMember: org !== null && members.length === 1,
    };
  }

  async function accountPage(request: FastifyRequest, reply: FastifyReply, failed: FormFailure | null = null): Promise<FastifyReply> {
    const principal = userOf(request);
    const { user, org } = principal;
    return renderPage(
      request,
      reply,
      'account',
      {
        title: 'Your account',
        profile: {
          name: user.name,
          email: user.email,
          phone: user.phone ?? '',
          orgName: org?.name ?? null,
          role: user.role,
          plan: org ? planName(org.plan) : null,
          staff: user.orgId === null,
        },
        sessions: await sessionsOf(principal),
        twoFactor: await twoFactorOf(principal),
        privacy: await privacyOf(principal, request),
      },
      { failed },
    );
  }

  app.get('/account', { config: { auth: 'user' }, schema: { hide: true } }, async (request, reply) => accountPage(request, reply));

  app.post('/account/password', { ...csrf, config: { auth: 'user', ...credentialLimit }, schema: { hide: true, body: PasswordForm } }, async (request, reply) => {
    const invalid = validationFailure(request, 'password');
    if (invalid) return accountPage(request, reply, invalid);
    const { user, session } = userOf(request);
    try {
      await services.passwords.changePassword({ user, session, currentPassword: request.body.currentPassword, newPassword: request.body.newPassword, context: request.requestContext });
      return seeOther(reply, '/account?done=password-changed');
    } catch (error) {
      const failed = formFailure(error, 'password', request.body);
      if (!failed) throw error;
      if (failed.status === 401) failed.fields.currentPassword = 'This is not your current password.';
      return accountPage(request, reply, failed);
    }
  });

  app.post('/account/sessions/:sessionId/revoke', { ...csrf, config: { auth: 'user' }, schema: { hide: true, params: SessionParams, body: Empty } }, async (request, reply) => {
    const { user, session } = userOf(request);
    const revoked = await services.sessions.revoke(user, request.params.sessionId, request.params.sessionId === session.id ? 'auth.logout' : 'session.revoked', request.requestContext);
    if (request.params.sessionId === session.id) {
      clearSessionCookie(reply, cookies);
      return seeOther(reply, '/login?done=logged-out');
    }
    return seeOther(reply, revoked ? '/account?done=session-revoked#sessions' : '/account#sessions');
  });

  app.post('/account/sessions/revoke-others', { ...csrf, config: { auth: 'user' }, schema: { hide: true, body: Empty } }, async (request, reply) => {
    const { user, session } = userOf(request);
    await services.sessions.revokeOthers(user, session.id, request.requestContext);
    return seeOther(reply, '/account?done=sessions-revoked#sessions');
  });

  // --- Two-factor authentication ---------------------------------------------
  const twoFactorPage = async (request: FastifyRequest, reply: FastifyReply, failed: FormFailure | null = null) =>
    renderPage(request, reply, 'two-factor', { title: 'Two-factor authentication', twoFactor: await twoFactorOf(userOf(request)) }, { failed });

  app.get('/account/two-factor', { config: { auth: 'user', duringMfaEnrolment: true }, schema: { hide: true } }, async (request, reply) => twoFactorPage(request, reply));

  interface EnrolView {
    secret: string;
    qrDataUrl: string | null;
  }
  const enrolPage = (request: FastifyRequest, reply: FastifyReply, view: EnrolView, failed: FormFailure | null = null) =>
    renderPage(request, reply, 'two-factor-enrol', { title: 'Set up two-factor authentication', ...view }, { failed });

  app.post(
    '/account/two-factor/enrol',
    { ...csrf, config: { auth: 'user', feature: 'mfa_totp', duringMfaEnrolment: true }, schema: { hide: true, body: Empty } },
    async (request, reply) => {
      try {
        const enrolment = await services.totp.enrol(userOf(request).user, request.requestContext);
        // The QR code as an <img> data URL: CSP img-src allows data:, and no inline SVG markup is trusted into the page.
        const qrDataUrl = `data:image/svg+xml;base64,${Buffer.from(enrolment.qrSvg, 'utf8').toString('base64')}`;
        return enrolPage(request, reply, { secret: enrolment.secret, qrDataUrl });
      } catch (error) {
        const failed = formFailure(error, 'two-factor', request.body);
        if (!failed) throw error;
        return twoFactorPage(request, reply, failed);
      }
    },
  );

  app.post(
    '/account/two-factor/confirm',
    { ...csrf, config: { auth: 'user', feature: 'mfa_totp', duringMfaEnrolment: true, ...credentialLimit }, schema: { hide: true, body: EnrolConfirmForm } },
    async (request, reply) => {
      const secret = typeof request.body?.secret === 'string' && /^[A-Z2-7=]{16,128}$/.test(request.body.secret) ? request.body.secret : '';
      // On a wrong code the page shows the secret again (the person has it already); the QR code is not redrawn.
      const again = (failed: FormFailure) => enrolPage(request, reply, { secret, qrDataUrl: null }, failed);
      const invalid = validationFailure(request, 'enrol');
      if (invalid) return again(invalid);
      const code = normalizeCode(request.body.code);
      if (code === null) return again({ form: 'enrol', status: 400, message: 'Enter the 6-digit code from your authenticator app.', fields: { code: 'Enter the 6 digits shown in your app.' }, values: {} });
      const { user, session } = userOf(request);
      try {
        const result = await services.totp.confirm(user, session, code, request.requestContext);
        // The assurance level changed: a new session token (ASVS 7.2.4).
        setSessionCookie(reply, cookies, result.session);
        return renderPage(request, reply, 'recovery-codes', { title: 'Save your recovery codes', codes: result.recoveryCodes, fresh: true });
      } catch (error) {
        const failed = formFailure(error, 'enrol', request.body);
        if (!failed) throw error;
        if (failed.status === 401) failed.fields.code = 'This code is not valid. Check the time on your device and enter the current code.';
        return again(failed);
      }
    },
  );

  app.post(
    '/account/two-factor/recovery-codes',
    { ...csrf, config: { auth: 'user', fresh: true }, schema: { hide: true, body: Empty } },
    async (request, reply) => {
      try {
        const codes = await services.totp.regenerateRecoveryCodes(userOf(request).user, request.requestContext);
        return renderPage(request, reply, 'recovery-codes', { title: 'Your new recovery codes', codes, fresh: false });
      } catch (error) {
        const failed = formFailure(error, 'two-factor', request.body);
        if (!failed) throw error;
        return twoFactorPage(request, reply, failed);
      }
    },
  );

  app.post(
    '/account/two-factor/disable',
    { ...csrf, config: { auth: 'user', fresh: true, ...credentialLimit }, schema: { hide: true, body: CodeForm } },
    async (request, reply) => {
      const invalid = validationFailure(request, 'disable');
      if (invalid) return twoFactorPage(request, reply, invalid);
      const code = normalizeCode(request.body.code);
      if (code === null) return twoFactorPage(request, reply, { form: 'disable', status: 400, message: 'Enter the 6-digit code from your authenticator app.', fields: { code: 'Enter the 6 digits shown in your app.' }, values: {} });
      try {
        await services.totp.disable(userOf(request).user, code, request.requestContext);
        return seeOther(reply, '/account?done=two-factor-off#two-factor');
      } catch (error) {
        const failed = formFailure(error, 'disable', request.body);
        if (!failed) throw error;
        if (failed.status === 401) failed.fields.code = 'This code is not valid. Wait for the next code and try again.';
        return twoFactorPage(request, reply, failed);
      }
    },
  );

  // --- Confirm it's you (fresh authentication for sensitive actions) ---------
  const confirmPage = async (request: FastifyRequest, reply: FastifyReply, returnTo: string, failed: FormFailure | null = null, needsCode = false) => {
    const principal = userOf(request);
    const status = await services.totp.status(principal.user);
    const hasTotp = status.totp.status === 'confirmed';
    return renderPage(
      request,
      reply,
      'confirm',
      // A second factor is needed (staff decisions): the password field is left out, so a password alone cannot be mistaken for enough.
      { title: 'Confirm it is you', returnTo, hasPassword: principal.user.passwordHash !== null && !(needsCode && hasTotp), hasTotp, needsCode },
      { failed },
    );
  };

  app.get(
    '/account/confirm',
    {
      config: { auth: 'user', duringMfaEnrolment: true },
      schema: {
        hide: true,
        querystring: Type.Object({ returnTo: Type.Optional(Type.String({ maxLength: 1024 })), factor: Type.Optional(Type.String({ maxLength: 10 })) }),
      },
    },
    async (request, reply) =>
      confirmPage(request, reply, safeReturnTo(request.query.returnTo, services.config.publicUrl) ?? '/account', null, request.query.factor === 'code'),
  );

  app.post(
    '/account/confirm',
    { ...csrf, config: { auth: 'user', duringMfaEnrolment: true, ...credentialLimit }, schema: { hide: true, body: ConfirmForm } },
    async (request, reply) => {
      const body = (request.body ?? {}) as { password?: string; code?: string; returnTo?: string };
      const returnTo = safeReturnTo(body.returnTo, services.config.publicUrl) ?? '/account';
      const invalid = validationFailure(request, 'confirm');
      if (invalid) return confirmPage(request, reply, returnTo, invalid);
      const password = body.password !== undefined && body.password !== '' ? body.password : undefined;
      const codeInput = body.code !== undefined && body.code.trim() !== '' ? body.code : undefined;
      const code = codeInput === undefined ? undefined : normalizeCode(codeInput);
      if (code === null) return confirmPage(request, reply, returnTo, { form: 'confirm', status: 400, message: 'Enter the 6-digit code from your authenticator app.', fields: { code: 'Enter the 6 digits shown in your app.' }, values: {} });
      if (password === undefined && code === undefined) {
        return confirmPage(request, reply, returnTo, { form: 'confirm', status: 400, message: 'Enter your password or a code.', fields: { password: 'Enter your password.' }, values: {} });
      }
      const { user, session } = userOf(request);
      try {
        const next = await services.passwords.reauthenticate({ user, session, password, code, context: request.requestContext });
        // ASVS 7.2.4: the session continues under a new token; the old one has ended.
        setSessionCookie(reply, cookies, next);
        const separator = returnTo.includes('?') ? '&' : '?';
        const [path, hash] = returnTo.split('#');
        return seeOther(reply, `${path}${separator}done=confirmed${hash === undefined ? '' : `#${hash}`}`);
      } catch (error) {
        const failed = formFailure(error, 'confirm', request.body);
        if (!failed) throw error;
        if (failed.status === 401) failed.fields[code !== undefined ? 'code' : 'password'] = code !== undefined ? 'This code is not valid.' : 'This is not your password.';
        return confirmPage(request, reply, returnTo, failed);
      }
    },
  );

  // --- Profile, consents, my data, delete my account (privacy service) -------
  app.post('/account/profile', { ...csrf, config: { auth: 'user' }, schema: { hide: true, body: ProfileForm } }, async (request, reply) => {
    const invalid = validationFailure(request, 'profile');
    if (invalid) return accountPage(request, reply, invalid);
    const phone = request.body.phone.trim();
    if (phone !== '' && !PHONE.test(phone)) {
      return accountPage(request, reply, { form: 'profile', status: 400, message: 'Please correct the fields marked below.', fields: { phone: 'Enter a phone number such as +358 40 123 4567.' }, values: { name: request.body.name, phone } });
    }
    try {
      await services.privacy.rectify(userOf(request).user, { name: request.body.name.trim(), phone: phone === '' ? null : phone }, request.requestContext);
      return seeOther(reply, '/account?done=profile-saved#profile');
    } catch (error) {
      const failed = formFailure(error, 'profile', request.body);
      if (!failed) throw error;
      return accountPage(request, reply, failed);
    }
  });

  // Changing the address password resets go to needs a fresh authentication (as PATCH /v1/me).
  app.post('/account/email', { ...csrf, config: { auth: 'user', fresh: true }, schema: { hide: true, body: EmailForm } }, async (request, reply) => {
    const invalid = validationFailure(request, 'email');
    if (invalid) return accountPage(request, reply, invalid);
    try {
      const result = await services.privacy.rectify(userOf(request).user, { email: request.body.email }, request.requestContext);
      return seeOther(reply, result.pendingEmail === null ? '/account#profile' : '/account?done=email-sent#profile');
    } catch (error) {
      const failed = formFailure(error, 'email', request.body);
      if (!failed) throw error;
      return accountPage(request, reply, failed);
    }
  });

  // The confirmation mail links here (privacy service: PUBLIC_URL/account/email/confirm?token=…).
  const emailConfirmPage = (request: FastifyRequest, reply: FastifyReply, token: string, failed: FormFailure | null = null) =>
    renderPage(request, reply, 'email-confirm', { title: 'Confirm your new email address', token }, { failed });

  app.get(
    '/account/email/confirm',
    { config: { auth: 'user' }, schema: { hide: true, querystring: Type.Object({ token: Type.Optional(Type.String({ maxLength: 256 })) }) } },
    async (request, reply) => emailConfirmPage(request, reply, request.query.token ?? ''),
  );

  app.post('/account/email/confirm', { ...csrf, config: { auth: 'user', ...credentialLimit }, schema: { hide: true, body: TokenForm } }, async (request, reply) => {
    const token = typeof request.body?.token === 'string' ? request.body.token : '';
    const invalid = validationFailure(request, 'email-confirm');
    if (invalid) return emailConfirmPage(request, reply, token, { ...invalid, message: 'This confirmation link is not valid. Ask for a new one from your account page.' });
    try {
      await services.privacy.confirmEmail(userOf(request).user, request.body.token, request.requestContext);
      return seeOther(reply, '/account?done=email-changed#profile');
    } catch (error) {
      const failed = formFailure(error, 'email-confirm', request.body);
      if (!failed) throw error;
      if (failed.fields.token) failed.message = 'This confirmation link is not valid, was already used or has expired. Ask for a new one from your account page.';
      return emailConfirmPage(request, reply, token, failed);
    }
  });

  app.post('/account/consents', { ...csrf, config: { auth: 'user' }, schema: { hide: true, body: ConsentsForm } }, async (request, reply) => {
    const invalid = validationFailure(request, 'consents');
    if (invalid) return accountPage(request, reply, invalid);
    await services.privacy.setConsents(userOf(request).user, { marketing: request.body.marketing === 'yes', saleOrShare: request.body.saleOrShare === 'yes' }, request.requestContext);
    return seeOther(reply, '/account?done=consents-saved#privacy');
  });

  app.post('/account/delete', { ...csrf, config: { auth: 'user', fresh: true }, schema: { hide: true, body: DeleteForm } }, async (request, reply) => {
    const invalid = validationFailure(request, 'delete');
    if (invalid) return accountPage(request, reply, invalid);
    if (request.body.understood !== 'yes') {
      return accountPage(request, reply, { form: 'delete', status: 400, message: 'Confirm that you understand your account cannot be restored.', fields: { understood: 'Tick this box to delete your account.' }, values: {} });
    }
    const { user } = userOf(request);
    try {
      await services.privacy.erase({ actor: user, target: user, context: request.requestContext }, request.body.deleteOrganization === 'yes' ? 'delete_if_sole_member' : 'keep');
      clearSessionCookie(reply, cookies);
      return seeOther(reply, '/login?done=account-deleted');
    } catch (error) {
      const failed = formFailure(error, 'delete', request.body);
      if (!failed) throw error;
      if (error instanceof AppError && error.code === 'conflict') {
        // The service's wording names API calls; say it in terms of this page.
        failed.message = (await privacyOf(userOf(request), request)).soleMember
          ? 'You are the only member of your organization. Tick "Also delete my organization" to delete both.'
          : 'You are the last owner of your organization. Make another member owner first (Organization admin, Members).';
      }
      return accountPage(request, reply, failed);
    }
  });
}
