import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CookieSettings } from '../http/cookies.js';

/**
 * The SSO browser-binding cookie: a random value whose hash the login
 * transaction stores, so the IdP's answer only completes a login in the
 * browser that started it (RFC 9700 §4.7.1 / §2.1). SameSite=Lax is enough:
 * the OIDC callback is a top-level GET navigation.
 */
export function ssoCookieName(settings: CookieSettings): string {
  return settings.secure ? '__Host-cleverom_sso' : 'cleverom_sso';
}

export function setSsoCookie(reply: FastifyReply, settings: CookieSettings, value: string, expires: Date): void {
  reply.setCookie(ssoCookieName(settings), value, { httpOnly: true, sameSite: 'lax', path: '/', secure: settings.secure, expires });
}

export function clearSsoCookie(reply: FastifyReply, settings: CookieSettings): void {
  reply.clearCookie(ssoCookieName(settings), { httpOnly: true, sameSite: 'lax', path: '/', secure: settings.secure });
}

export function ssoCookieOf(request: FastifyRequest, settings: CookieSettings): string | undefined {
  return request.cookies[ssoCookieName(settings)];
}
