import type { Plan } from '../plans/plans.js';
import type { orgs } from './tables.js';

export interface OrgSettings {
  requireMfa: boolean;
  enforceSso: boolean;
  requireCustomerApproval: boolean;
  /**
   * Minimum password length for members: 15 by default; an organization that
   * requires MFA may lower it to 8 (API.md "Sign-up", NIST SP 800-63B-4 §3.1.1.2).
   */
  passwordMinLength: number;
}

export const DEFAULT_ORG_SETTINGS: OrgSettings = Object.freeze({
  requireMfa: false,
  enforceSso: false,
  requireCustomerApproval: false,
  passwordMinLength: 15,
});

export interface Org {
  id: string;
  name: string;
  slug: string;
  plan: Plan;
  settings: OrgSettings;
  createdAt: Date;
}

export function toOrg(row: typeof orgs.$inferSelect): Org {
  return {
    id: row.id,
    name: row.name,
    slug: row.slug,
    plan: row.plan as Plan,
    settings: { ...DEFAULT_ORG_SETTINGS, ...(JSON.parse(row.settings) as Partial<OrgSettings>) },
    createdAt: row.createdAt,
  };
}

/** An `orgs` row as SQLite returns it (snake_case, epoch milliseconds). */
export interface RawOrgRow {
  id: string;
  name: string;
  slug: string;
  plan: string;
  settings: string;
  created_at: number;
  updated_at: number;
}

export function rawToOrg(r: RawOrgRow): Org {
  return toOrg({
    id: r.id,
    name: r.name,
    slug: r.slug,
    plan: r.plan,
    settings: r.settings,
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
  });
}

/** A URL-safe slug; uniqueness is settled by the repository. */
export function slugify(name: string): string {
  const base = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return base === '' ? 'org' : base;
}
