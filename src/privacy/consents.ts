import type BetterSqlite3 from 'better-sqlite3';

/** The purposes a person can consent to (opt in); none is assumed (default false). */
export const CONSENT_PURPOSES = ['marketing', 'saleOrShare'] as const;
export type ConsentPurpose = (typeof CONSENT_PURPOSES)[number];

export interface ConsentState {
  marketing: boolean;
  saleOrShare: boolean;
  /** Time of the latest change, or null when the person never chose. */
  updatedAt: Date | null;
}

/** The latest choice per purpose from `consent_history`; call inside the caller's transaction. */
export function currentConsents(sqlite: BetterSqlite3.Database, userId: string): ConsentState {
  const rows = sqlite
    .prepare(
      `SELECT purpose, granted, at FROM consent_history h
        WHERE user_id = @id AND id = (SELECT id FROM consent_history WHERE user_id = @id AND purpose = h.purpose ORDER BY at DESC, id DESC LIMIT 1)`,
    )
    .all({ id: userId }) as { purpose: string; granted: number; at: number }[];
  const state: ConsentState = { marketing: false, saleOrShare: false, updatedAt: null };
  for (const row of rows) {
    if (row.purpose === 'marketing' || row.purpose === 'saleOrShare') state[row.purpose] = row.granted === 1;
    if (state.updatedAt === null || row.at > state.updatedAt.getTime()) state.updatedAt = new Date(row.at);
  }
  return state;
}
