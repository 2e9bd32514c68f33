import { AppError, validationFailed } from '../platform/errors.js';
import type { SqliteDatabase } from '../platform/db/sqlite.js';
import type { AuditKeyRing, CheckpointPublicKey } from './audit-keys.js';
import type { Checkpoint } from './checkpoint.js';
import type { AuditCheckpoints } from './checkpoints.js';
import type { AuditEvent, RequestContext } from './events.js';
import type { AuditFilter, ProofItem, SqliteAuditLog } from './sqlite-audit.js';

/** The staff member searching (a `StaffActor` of staff/; audit imports only platform, so the shape is stated here). */
export interface AuditSearcher {
  user: { id: string };
  staff: { role: string };
}

/** The edge a staff search came through, recorded with it. */
export type AuditSearchEdge = 'api' | 'console';

/** A verification bundle for a stretch of the chain (docs/api.md, "Verifying an exported slice"). */
export interface AuditProof {
  fromSeq: number;
  toSeq: number;
  /** The hash of event `fromSeq - 1`, the start of the first link. */
  prevHash: string;
  /** Signed over event `toSeq`. */
  checkpoint: Checkpoint;
  /** The key that signed it; pin it from `GET /v1/audit/checkpoint-keys` rather than trusting this copy. */
  publicKey: CheckpointPublicKey;
  chain: ProofItem[];
}

/** At most this many sequence numbers per proof; the next one starts at `toSeq + 1`. */
export const MAX_PROOF_EVENTS = 100_000;

/**
 * Reading and proving the audit log. Reading it is itself a staff access
 * (ASVS 16.3; SECURITY.md: staff, audit): `searchAsStaff` is the only way a
 * staff member searches it, whichever edge (API or console page) asks, and
 * it records `staff.audit.searched` in the transaction of the read, so a
 * search is never answered unrecorded (fail closed, ASVS 16.5).
 */
export class AuditService {
  constructor(
    private readonly deps: { database: SqliteDatabase; audit: SqliteAuditLog; checkpoints: AuditCheckpoints; keys: AuditKeyRing },
  ) {}

  async searchAsStaff(actor: AuditSearcher, filter: AuditFilter, edge: AuditSearchEdge, context: RequestContext): Promise<AuditEvent[]> {
    // The routes gate on security_admin too; the rule lives here (defence in depth).
    if (actor.staff.role !== 'security_admin') throw new AppError('forbidden', { publicDetail: 'This needs the security_admin staff role.' });
    return this.deps.database.transaction(() => {
      const found = this.deps.audit.list(filter);
      this.deps.audit.append({
        action: 'staff.audit.searched',
        actor: { type: 'staff', id: actor.user.id },
        orgId: filter.orgId ?? null,
        data: {
          via: edge,
          filters: {
            orgId: filter.orgId ?? null,
            actorId: filter.actorId ?? null,
            action: filter.action ?? null,
            from: filter.from?.toISOString() ?? null,
            to: filter.to?.toISOString() ?? null,
          },
          afterSeq: filter.afterSeq ?? 0,
          results: found.length,
        },
        pii: { userId: actor.user.id, ...context },
      });
      return found;
    });
  }

  /**
   * A proof for `orgId` over `fromSeq..toSeq` (defaults: the first keyed
   * event, and the head or `fromSeq + MAX_PROOF_EVENTS - 1`). Legacy events
   * have no digest to stand in for them, so a range starts at the first
   * keyed event at the earliest. Every event of the range is verified
   * (links, hashes, MACs) before its end is signed.
   */
  async orgProof(orgId: string, range: { fromSeq?: number | undefined; toSeq?: number | undefined }): Promise<AuditProof> {
    const firstKeyed = this.deps.audit.firstKeyedSeq();
    if (firstKeyed === null) throw new AppError('conflict', { publicDetail: 'The audit chain has no keyed events yet.' });
    const head = this.deps.audit.headPosition();
    const fromSeq = Math.max(range.fromSeq ?? firstKeyed, firstKeyed);
    const toSeq = Math.min(range.toSeq ?? head.seq, head.seq, fromSeq + MAX_PROOF_EVENTS - 1);
    if (fromSeq > toSeq) {
      throw validationFailed([{ field: range.toSeq !== undefined && range.toSeq < fromSeq ? 'toSeq' : 'fromSeq', message: `no events in ${fromSeq}..${toSeq} (keyed events are ${firstKeyed}..${head.seq})` }]);
    }
    const proof = this.deps.audit.proofItems(orgId, fromSeq, toSeq);
    if (!proof.ok) throw new AppError('internal', { detail: { auditChainBroken: proof.brokenSeq, reason: proof.reason } });
    const signed = this.deps.checkpoints.signVerifiedPosition(proof.last);
    if (!signed.ok) throw new AppError('internal', { detail: { auditChainContradictsCheckpoint: signed.brokenSeq, reason: signed.reason } });
    const { checkpoint } = signed;
    const publicKey = this.deps.keys.publicKey(checkpoint.keyId);
    if (!publicKey) throw new Error('the primary audit key has no public key');
    return { fromSeq, toSeq, prevHash: proof.prevHash, checkpoint, publicKey, chain: proof.items };
  }

  /** The public keys of every checkpoint key of the ring (JWK Set members). */
  checkpointKeys(): CheckpointPublicKey[] {
    return this.deps.keys.publicKeys();
  }

  latestCheckpoint(): Checkpoint | null {
    return this.deps.checkpoints.latestCheckpoint();
  }
}
