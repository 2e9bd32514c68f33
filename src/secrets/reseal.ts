import type { SqliteAuditLog } from '../audit/sqlite-audit.js';
import { totpSealContext } from '../auth/totp/totp-service.js';
import { clientSecretContext } from '../sso/connections/connection.js';
import type { SecretBox } from '../platform/crypto/secret-box.js';
import type { SqliteDatabase } from '../platform/db/sqlite.js';

/**
 * Every column holding a value sealed with `SECRETS_KEY`, with the context
 * (additional authenticated data) it was sealed under. A feature that seals
 * a new kind of secret adds its column here.
 */
export const SEALED_COLUMNS = [
  { name: 'totpSecrets', table: 'totp_factors', id: 'user_id', column: 'secret_sealed', context: totpSealContext },
  {
    name: 'oidcClientSecrets',
    table: 'sso_connections',
    id: 'id',
    column: 'client_secret_sealed',
    context: clientSecretContext,
  },
] as const;

export type ResealCounts = Record<(typeof SEALED_COLUMNS)[number]['name'], number>;

/**
 * Key rotation (docs/operations.md): re-seal every value not sealed with the
 * primary (first) key of the ring, in one transaction with its audit event.
 * Afterwards the old key can leave the ring. Values that cannot be opened
 * (unknown key id) abort the whole run: nothing is half-rotated.
 */
export function resealAll(database: SqliteDatabase, audit: SqliteAuditLog, box: SecretBox): ResealCounts {
  return database.transaction(() => {
    const counts = {} as ResealCounts;
    for (const spec of SEALED_COLUMNS) {
      const rows = database.sqlite
        .prepare(`SELECT ${spec.id} AS id, ${spec.column} AS sealed FROM ${spec.table} WHERE ${spec.column} IS NOT NULL`)
        .all() as { id: string; sealed: string }[];
      const update = database.sqlite.prepare(`UPDATE ${spec.table} SET ${spec.column} = ? WHERE ${spec.id} = ?`);
      let n = 0;
      for (const row of rows) {
        if (!box.needsReseal(row.sealed)) continue;
        const context = spec.context(row.id);
        update.run(box.seal(box.open(row.sealed, context), context), row.id);
        n += 1;
      }
      counts[spec.name] = n;
    }
    audit.append({ action: 'secrets.resealed', actor: { type: 'system', id: null }, data: { primaryKeyId: box.primaryKeyId, ...counts } });
    return counts;
  });
}
