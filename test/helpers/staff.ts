import { expect } from 'vitest';
import { GOOD_PASSWORD, login, uniqueEmail, type TestApp } from './app.js';
import { enrolTotp } from './totp.js';

export interface StaffUser {
  id: string;
  email: string;
  /** An AAL2 session token (TOTP enrolled). */
  token: string;
  secret: string;
}

/** Create a staff principal as the CLI does, log in and enrol TOTP (staff routes need AAL2). */
export async function createStaff(
  t: TestApp,
  role: 'support' | 'engineer' | 'security_admin',
  options: { nda?: boolean; name?: string } = {},
): Promise<StaffUser> {
  const email = uniqueEmail(role);
  const { id } = await t.services.staff.createStaff({
    email,
    name: options.name ?? `Staff ${role}`,
    role,
    ndaSignedAt: options.nda === false ? null : '2026-01-02',
    password: GOOD_PASSWORD,
  });
  const token = await login(t.app, email);
  const { token: aal2, secret } = await enrolTotp(t, { token, userId: id, orgId: '', email, password: GOOD_PASSWORD });
  return { id, email, token: aal2, secret };
}

/** Bearer-authenticated (no CSRF origin needed). */
export function bearer(token: string): { headers: Record<string, string> } {
  return { headers: { authorization: `Bearer ${token}` } };
}

export async function requestAccess(
  t: TestApp,
  staff: StaffUser,
  body: { orgId: string; scope?: 'read' | 'write'; reason?: string; durationMinutes?: number; ticket?: string },
): Promise<string> {
  const response = await t.app.inject({
    method: 'POST',
    url: '/v1/staff/access-requests',
    ...bearer(staff.token),
    payload: { scope: 'read', reason: 'Customer ticket about login trouble', ...body },
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json<{ id: string }>().id;
}

export async function approve(t: TestApp, approver: StaffUser, requestId: string): Promise<{ statusCode: number; body: Record<string, unknown> }> {
  const response = await t.app.inject({ method: 'POST', url: `/v1/staff/access-requests/${requestId}/approve`, ...bearer(approver.token), payload: {} });
  return { statusCode: response.statusCode, body: response.json() };
}
