import type { FastifyReply, FastifyRequest } from 'fastify';
import type { UserPrincipal } from '../http/principal.js';
import { summaryOf, type FormFailure } from './forms.js';

/** The header's links for the person signed in (or none). */
export interface Nav {
  signedIn: boolean;
  name: string | null;
  /** `/orgs/:orgId/admin` for owners and admins. */
  adminHref: string | null;
  staff: boolean;
}

/** What every template gets besides its own data. */
export interface PageBase {
  title: string;
  csrf: string;
  nav: Nav;
  /** A sentence confirming what just happened (from a fixed list, never from the URL). */
  notice: string | null;
  failed: (FormFailure & { summary: { field: string; text: string }[] }) | null;
}

export const SIGNED_OUT: Nav = { signedIn: false, name: null, adminHref: null, staff: false };

export function navFor(principal: UserPrincipal | null): Nav {
  if (!principal) return SIGNED_OUT;
  const { user } = principal;
  const admin = user.orgId !== null && (user.role === 'owner' || user.role === 'admin');
  return { signedIn: true, name: user.name, adminHref: admin ? `/orgs/${user.orgId}/admin` : null, staff: user.orgId === null };
}

/** The signed-in principal of a request, if its gate resolved one. */
export function principalOf(request: FastifyRequest): UserPrincipal | null {
  const principal = request.principal;
  return principal?.kind === 'user' ? principal : null;
}

/**
 * Confirmations shown after a redirect (`?done=key`). Only these fixed
 * sentences are ever shown, so a crafted link cannot put words on the page.
 */
const NOTICES: Record<string, string> = {
  'logged-out': 'You are logged out.',
  'mfa-expired': 'That sign-in attempt has expired. Log in again.',
  'password-reset': 'Your password is changed. Log in with the new one.',
  'password-changed': 'Your password is changed. Your other sessions were signed out.',
  'session-revoked': 'That session is signed out.',
  'sessions-revoked': 'Your other sessions are signed out.',
  'two-factor-off': 'Two-factor authentication is turned off.',
  'confirmed': 'Thank you: your identity is confirmed for the next 10 minutes.',
  'invited': 'The invitation is sent.',
  'role-changed': 'The role is changed.',
  'member-removed': 'The member is removed.',
  'member-restricted': 'The member is restricted: they cannot log in until you lift it.',
  'member-unrestricted': 'The restriction is lifted.',
  'settings-saved': 'The setting is saved.',
  'access-approved': 'You approved the staff access request.',
  'access-denied': 'You denied the staff access request.',
  'connection-added': 'The SSO connection is added.',
  'saml-connection-added': 'The SAML connection is added. Give your identity provider our entity ID and ACS URL shown with it, or our metadata URL.',
  'connection-saved': 'The SSO connection is saved.',
  'connection-deleted': 'The SSO connection is deleted.',
  'domain-claimed': 'The domain is claimed. Publish the TXT record below, then verify it.',
  'domain-verified': 'The domain is verified.',
  'domain-released': 'The domain claim is released.',
  'mfa-reset': "The member's two-factor authentication is reset.",
  'requested': 'Your access request is sent for approval.',
  'approved': 'The access request is approved.',
  'denied': 'The access request is denied.',
  'revoked': 'The access is revoked.',
  'consents-saved': 'Your choices are saved.',
  'profile-saved': 'Your profile is saved.',
  'email-sent': 'We sent a confirmation link to the new address. Your email changes when you open it.',
  'email-changed': 'Your email address is changed.',
  'account-deleted': 'Your account and personal data are deleted.',
};

export function noticeOf(request: FastifyRequest): string | null {
  const done = (request.query as { done?: unknown } | undefined)?.done;
  return typeof done === 'string' ? (NOTICES[done] ?? null) : null;
}

/**
 * Render `template` inside the layout with the common context. Pages are
 * personal: never cached, never framed (helmet), referrers only to ourselves.
 */
export async function renderPage<T extends object>(
  request: FastifyRequest,
  reply: FastifyReply,
  template: string,
  data: T & { title: string },
  options: { status?: number; failed?: FormFailure | null; nav?: Nav } = {},
): Promise<FastifyReply> {
  const base: PageBase = {
    title: data.title,
    csrf: reply.generateCsrf(),
    nav: options.nav ?? navFor(principalOf(request)),
    notice: noticeOf(request),
    failed: options.failed ? { ...options.failed, summary: summaryOf(options.failed) } : null,
  };
  reply.header('cache-control', 'no-store');
  reply.code(options.status ?? options.failed?.status ?? 200);
  return reply.view(template, { ...base, ...data });
}

/** 303 See Other: after a form POST, the browser GETs the next page. */
export function seeOther(reply: FastifyReply, location: string): FastifyReply {
  return reply.header('cache-control', 'no-store').redirect(location, 303);
}

/** "2026-11-25 03:50 UTC": unambiguous for people in any time zone. */
export function formatTime(value: Date | string | null): string {
  if (value === null) return '';
  const date = typeof value === 'string' ? new Date(value) : value;
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** "1 h 5 min" left until `until`, or "ended". */
export function timeLeft(until: Date | string | null, now: Date): string {
  if (until === null) return '';
  const ms = (typeof until === 'string' ? new Date(until) : until).getTime() - now.getTime();
  if (ms <= 0) return 'ended';
  const minutes = Math.ceil(ms / 60_000);
  const hours = Math.floor(minutes / 60);
  return hours > 0 ? `${hours} h ${minutes % 60} min` : `${minutes} min`;
}
