import type { FastifyReply, FastifyRequest } from 'fastify';
import type { NewSession } from '../auth/session/session.js';

/**
 * Session cookie (ASVS 3.3): HttpOnly, SameSite=Lax, Path=/; over https also
 * Secure with the `__Host-` prefix (no Domain attribute, so no subdomain can set it).
 */
export interface CookieSettings {
  secure: boolean;
}

export function sessionCookieName(settings: CookieSettings): string {
  return settings.secure ? '__Host-cleverom_session' : 'cleverom_session';
}

/**
 * Response header carrying a rotated session token to a bearer client
 * (`POST /v1/me/reauthenticate`, docs/api.md). Sent only to callers that
 * authenticated with `Authorization: Bearer`.
 */
export const SESSION_TOKEN_HEADER = 'cleverom-session-token';

export function setSessionCookie(reply: FastifyReply, settings: CookieSettings, next: NewSession): void {
  reply.setCookie(sessionCookieName(settings), next.token, {
    httpOnly: true,
    sameSite: 'lax',
    path: '/',
    secure: settings.secure,
    expires: next.session.expiresAt,
  });
}

export function clearSessionCookie(reply: FastifyReply, settings: CookieSettings): void {
  reply.clearCookie(sessionCookieName(settings), { httpOnly: true, sameSite: 'lax', path: '/', secure: settings.secure });
}

export function sessionCookieOf(request: FastifyRequest, settings: CookieSettings): string | undefined {
  return request.cookies[sessionCookieName(settings)];
}

/** The pending-MFA cookie: not a session; it only names a challenge for `POST /v1/login/mfa`. */
export function mfaCookieName(settings: CookieSettings): string {
  return settings.secure ? '__Host-cleverom_mfa' : 'cleverom_mfa';
}

export function setMfaCookie(reply: FastifyReply, settings: CookieSettings, token: string, expires: Date): void {
  reply.setCookie(mfaCookieName(settings), token, { httpOnly: true, sameSite: 'lax', path: '/', secure: settings.secure, expires });
}

export function clearMfaCookie(reply: FastifyReply, settings: CookieSettings): void {
  reply.clearCookie(mfaCookieName(settings), { httpOnly: true, sameSite: 'lax', path: '/', secure: settings.secure });
}

export function mfaCookieOf(request: FastifyRequest, settings: CookieSettings): string | undefined {
  return request.cookies[mfaCookieName(settings)];
}
