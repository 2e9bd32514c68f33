import { readFileSync } from 'node:fs';

/** Pure plan catalogue: which plan has which features (no I/O after loading). */
export const FEATURES = ['mfa_totp', 'sso', 'access_approval', 'access_transparency', 'audit_export'] as const;
export type Feature = (typeof FEATURES)[number];
export const PLANS = ['free', 'pro', 'enterprise'] as const;
export type Plan = (typeof PLANS)[number];

export function isFeature(value: string): value is Feature {
  return (FEATURES as readonly string[]).includes(value);
}
export function isPlan(value: string): value is Plan {
  return (PLANS as readonly string[]).includes(value);
}

export class PlanCatalogue {
  constructor(private readonly features: ReadonlyMap<Plan, ReadonlySet<Feature>>) {}

  featuresOf(plan: Plan): Feature[] {
    return FEATURES.filter((f) => this.features.get(plan)?.has(f) ?? false);
  }

  has(plan: Plan, feature: Feature): boolean {
    return this.features.get(plan)?.has(feature) ?? false;
  }

  /** The cheapest plan that includes `feature`. */
  requiredPlanFor(feature: Feature): Plan {
    return PLANS.find((p) => this.has(p, feature)) ?? 'enterprise';
  }
}

/** Load and validate `config/plans.json`; throws naming every problem. */
export function loadPlanCatalogue(file: string): PlanCatalogue {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as { plans?: Record<string, { features?: unknown }> };
  const problems: string[] = [];
  const map = new Map<Plan, Set<Feature>>();
  for (const plan of PLANS) {
    const entry = raw.plans?.[plan];
    if (!entry || !Array.isArray(entry.features)) {
      problems.push(`plan "${plan}" needs a features array`);
      continue;
    }
    const set = new Set<Feature>();
    for (const f of entry.features as unknown[]) {
      if (typeof f === 'string' && isFeature(f)) set.add(f);
      else problems.push(`plan "${plan}" lists unknown feature ${JSON.stringify(f)}`);
    }
    map.set(plan, set);
  }
  for (const plan of Object.keys(raw.plans ?? {})) {
    if (!isPlan(plan)) problems.push(`unknown plan "${plan}"`);
  }
  if (problems.length > 0) throw new Error(`Invalid plans file ${file}: ${problems.join('; ')}`);
  return new PlanCatalogue(map);
}
