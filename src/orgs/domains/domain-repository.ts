import type BetterSqlite3 from 'better-sqlite3';
import type { AuditEventInput } from '../../audit/events.js';
import type { SqliteAuditLog } from '../../audit/sqlite-audit.js';
import type { SqliteDatabase } from '../../platform/db/sqlite.js';

export type VerificationMethod = 'dns' | 'manual';

export interface OrgDomain {
  id: string;
  orgId: string;
  domain: string;
  verificationToken: string;
  verifiedAt: Date | null;
  verificationMethod: VerificationMethod | null;
  createdAt: Date;
}

/** Domain claims. Each write is one transaction with its audit event. */
export interface DomainRepository {
  listByOrg(orgId: string): Promise<OrgDomain[]>;
  find(orgId: string, domain: string): Promise<OrgDomain | null>;
  /** The claim that verified `domain`, whichever organization holds it. */
  verifiedClaim(domain: string): Promise<OrgDomain | null>;
  /** `duplicate`: this org already claimed it; `verified_elsewhere`: another org verified it. */
  claim(claim: OrgDomain, event: AuditEventInput): Promise<'claimed' | 'duplicate' | 'verified_elsewhere'>;
  /** Mark a claim verified; `verified_elsewhere` when another org won the name first (unique index). */
  markVerified(claimId: string, method: VerificationMethod, at: Date, event: AuditEventInput): Promise<'verified' | 'verified_elsewhere'>;
  /** Record a failed DNS check (audit only). */
  recordFailure(event: AuditEventInput): Promise<void>;
  release(orgId: string, domain: string, event: AuditEventInput): Promise<boolean>;
}

interface DomainRow {
  id: string;
  org_id: string;
  domain: string;
  verification_token: string;
  verified_at: number | null;
  verification_method: string | null;
  created_at: number;
}

function toDomain(row: DomainRow): OrgDomain {
  return {
    id: row.id,
    orgId: row.org_id,
    domain: row.domain,
    verificationToken: row.verification_token,
    verifiedAt: row.verified_at === null ? null : new Date(row.verified_at),
    verificationMethod: row.verification_method as VerificationMethod | null,
    createdAt: new Date(row.created_at),
  };
}

function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE';
}

export class SqliteDomainRepository implements DomainRepository {
  private readonly sqlite: BetterSqlite3.Database;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly audit: SqliteAuditLog,
  ) {
    this.sqlite = database.sqlite;
  }

  async listByOrg(orgId: string): Promise<OrgDomain[]> {
    return (this.sqlite.prepare('SELECT * FROM org_domains WHERE org_id = ? ORDER BY domain').all(orgId) as DomainRow[]).map(toDomain);
  }

  async find(orgId: string, domain: string): Promise<OrgDomain | null> {
    const row = this.sqlite.prepare('SELECT * FROM org_domains WHERE org_id = ? AND domain = ?').get(orgId, domain) as DomainRow | undefined;
    return row ? toDomain(row) : null;
  }

  async verifiedClaim(domain: string): Promise<OrgDomain | null> {
    const row = this.sqlite.prepare('SELECT * FROM org_domains WHERE domain = ? AND verified_at IS NOT NULL').get(domain) as DomainRow | undefined;
    return row ? toDomain(row) : null;
  }

  async claim(claim: OrgDomain, event: AuditEventInput): Promise<'claimed' | 'duplicate' | 'verified_elsewhere'> {
    return this.database.transaction(() => {
      const verified = this.sqlite.prepare('SELECT org_id FROM org_domains WHERE domain = ? AND verified_at IS NOT NULL').get(claim.domain) as
        | { org_id: string }
        | undefined;
      if (verified && verified.org_id !== claim.orgId) return 'verified_elsewhere';
      const inserted = this.sqlite
        .prepare(
          `INSERT INTO org_domains (id, org_id, domain, verification_token, verified_at, verification_method, created_at)
           VALUES (?, ?, ?, ?, NULL, NULL, ?) ON CONFLICT (org_id, domain) DO NOTHING`,
        )
        .run(claim.id, claim.orgId, claim.domain, claim.verificationToken, claim.createdAt.getTime());
      if (inserted.changes === 0) return 'duplicate';
      this.audit.append(event);
      return 'claimed';
    });
  }

  async markVerified(claimId: string, method: VerificationMethod, at: Date, event: AuditEventInput): Promise<'verified' | 'verified_elsewhere'> {
    try {
      return this.database.transaction(() => {
        this.sqlite
          .prepare('UPDATE org_domains SET verified_at = ?, verification_method = ? WHERE id = ? AND verified_at IS NULL')
          .run(at.getTime(), method, claimId);
        this.audit.append(event);
        return 'verified' as const;
      });
    } catch (error) {
      // org_domains_verified_unique: another organization verified the name first.
      if (isUniqueViolation(error)) return 'verified_elsewhere';
      throw error;
    }
  }

  async recordFailure(event: AuditEventInput): Promise<void> {
    this.database.transaction(() => {
      this.audit.append(event);
    });
  }

  async release(orgId: string, domain: string, event: AuditEventInput): Promise<boolean> {
    return this.database.transaction(() => {
      const removed = this.sqlite.prepare('DELETE FROM org_domains WHERE org_id = ? AND domain = ?').run(orgId, domain);
      if (removed.changes === 0) return false;
      this.audit.append(event);
      return true;
    });
  }
}
