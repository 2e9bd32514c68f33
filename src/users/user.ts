import type { users } from './tables.js';

export const ORG_ROLES = ['owner', 'admin', 'member'] as const;
export type OrgRole = (typeof ORG_ROLES)[number];
export type UserStatus = 'active' | 'restricted';
export type UserRow = typeof users.$inferSelect;

export interface User {
  id: string;
  email: string;
  name: string;
  phone: string | null;
  orgId: string | null;
  role: OrgRole | null;
  status: UserStatus;
  passwordHash: string | null;
  createdAt: Date;
}

/** What the API shows of a user (never the password hash). */
export interface PublicUser {
  id: string;
  email: string;
  name: string;
  phone: string | null;
  orgId: string | null;
  role: OrgRole | null;
  createdAt: string;
}

export function toUser(row: UserRow): User {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    phone: row.phone,
    orgId: row.orgId,
    role: row.role as OrgRole | null,
    status: row.status as UserStatus,
    passwordHash: row.passwordHash,
    createdAt: row.createdAt,
  };
}

export function publicUser(user: User): PublicUser {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    phone: user.phone,
    orgId: user.orgId,
    role: user.role,
    createdAt: user.createdAt.toISOString(),
  };
}

/**
 * Email addresses are compared in one normal form: Unicode NFC, trimmed,
 * lower-cased (both halves; no provider treats case as significant).
 */
export function normalizeEmail(email: string): string {
  return email.normalize('NFC').trim().toLowerCase();
}
