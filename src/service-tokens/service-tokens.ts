import type BetterSqlite3 from 'better-sqlite3';
import type { AuditActor } from '../audit/events.js';
import type { SqliteAuditLog } from '../audit/sqlite-audit.js';
import type { Clock } from '../platform/clock.js';
import { hashToken, randomToken } from '../platform/crypto/tokens.js';
import type { SqliteDatabase } from '../platform/db/sqlite.js';
import { validationFailed } from '../platform/errors.js';
import { newId } from '../platform/ids.js';

/** Scopes a machine caller can hold (API.md "Service tokens"). */
export const SERVICE_SCOPES = ['plans:write', 'authz:check'] as const;
export type ServiceScope = (typeof SERVICE_SCOPES)[number];
const PREFIX = 'cst_';

export interface ServiceToken {
  id: string;
  name: string;
  scopes: ServiceScope[];
}

export function looksLikeServiceToken(bearer: string): boolean {
  return bearer.startsWith(PREFIX);
}

/** Machine callers' tokens: shown once at creation, stored as SHA-256 only. */
export class ServiceTokens {
  private readonly byHash: BetterSqlite3.Statement<[string], { id: string; name: string; scopes: string }>;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly audit: SqliteAuditLog,
    private readonly clock: Clock,
  ) {
    this.byHash = database.sqlite.prepare('SELECT id, name, scopes FROM service_tokens WHERE token_hash = ? AND revoked_at IS NULL');
  }

  async create(name: string, scopes: string[], actor: AuditActor): Promise<{ id: string; token: string }> {
    const unknown = scopes.filter((s) => !(SERVICE_SCOPES as readonly string[]).includes(s));
    if (unknown.length > 0 || scopes.length === 0) {
      throw validationFailed([{ field: 'scopes', message: `must be a non-empty list of ${SERVICE_SCOPES.join(', ')}` }]);
    }
    const id = newId();
    const token = `${PREFIX}${randomToken(32)}`;
    this.database.transaction(() => {
      this.database.sqlite
        .prepare('INSERT INTO service_tokens (id, name, token_hash, scopes, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, NULL)')
        .run(id, name, hashToken(token), JSON.stringify(scopes), this.clock.now().getTime());
      this.audit.append({ action: 'service_token.created', actor, subjectId: id, data: { name, scopes } });
    });
    return { id, token };
  }

  async verify(token: string): Promise<ServiceToken | null> {
    if (!looksLikeServiceToken(token) || token.length > 128) return null;
    const row = this.byHash.get(hashToken(token));
    return row ? { id: row.id, name: row.name, scopes: JSON.parse(row.scopes) as ServiceScope[] } : null;
  }
}
