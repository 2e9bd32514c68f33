import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Clock } from '../platform/clock.js';
import type { AuditKeyRing } from './audit-keys.js';
import { GENESIS_POSITION, type ChainPosition } from './chain-verifier.js';
import { checkCheckpointSignature, parseCheckpoint, signCheckpoint, type Checkpoint } from './checkpoint.js';
import type { RangeCheck, SqliteAuditLog, VerifyResult } from './sqlite-audit.js';

export interface CheckpointLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Why no checkpoint was signed: the chain is broken, or it contradicts an earlier checkpoint. */
export interface CheckpointRefusal {
  ok: false;
  events: number;
  brokenSeq: number;
  reason: string;
}

export type CheckpointOutcome = { ok: true; checkpoint: Checkpoint; file: string } | CheckpointRefusal;

/** `audit:verify --checkpoint`: the full verification plus the checkpoint's own check. */
export type CheckpointVerification =
  | { ok: false; error: 'checkpoint_invalid'; reason: string }
  | (VerifyResult & { checkpointSeq: number });

/** Rows checked per event-loop turn by the timer (about 0.1 s of work). */
const SLICE = 20_000;
const FILE_PATTERN = /^\d{12}-\d{8}T\d{9}Z\.json$/;
/** Files looked at, newest first, for the newest one with a valid signature. */
const SCAN_LIMIT = 50;

/**
 * Signed checkpoints of the audit chain head, kept outside the database
 * (SECURITY.md: "audit key and checkpoints"; docs/threat-model.md).
 *
 * A checkpoint is signed only over a chain that verifies (rules of
 * chain-verifier.ts), so a signature never vouches for a forged event. To
 * keep that cheap, verification resumes from the newest checkpoint on disk
 * that the chain still matches (its history was verified before it was
 * signed), and checks only the events after it. When the newest signed
 * checkpoint on disk contradicts the chain (the event at its `seq` is
 * missing or has another hash: the history was truncated or rewritten, or
 * an older backup was restored), no new checkpoint is signed until an
 * operator has looked (docs/operations.md, "Audit checkpoints").
 *
 * Written into `AUDIT_CHECKPOINT_DIR` by a timer of the server every
 * `AUDIT_CHECKPOINT_INTERVAL_MINUTES` (when the chain has grown), by
 * `audit:checkpoint`, and once on the first start over a chain that has
 * only legacy (unkeyed) events. They protect anything only once copied
 * where whoever can write the database cannot (docs/operations.md).
 */
export class AuditCheckpoints {
  /** The last position this process signed, its history verified. */
  private verified: ChainPosition | null = null;
  private latest: Checkpoint | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly deps: { audit: SqliteAuditLog; keys: AuditKeyRing; clock: Clock; dir: string; log: CheckpointLog },
  ) {}

  /** The newest checkpoint this process signed or found on disk (for exports); null when none. */
  latestCheckpoint(): Checkpoint | null {
    return this.latest;
  }

  /** Verify the chain up to its head (from the newest checkpoint it still matches), then sign and write the head. Synchronous (CLI). */
  checkpointHead(): CheckpointOutcome {
    const resume = this.resumePoint();
    if (!resume.ok) return resume;
    const head = this.deps.audit.headPosition();
    const check = this.deps.audit.verifyRange(resume.from, head.seq, Number.MAX_SAFE_INTEGER);
    return this.signVerified(check, head);
  }

  /**
   * The same, checking `SLICE` events per event-loop turn so requests are
   * served meanwhile (the timer). Nothing is written when the head has not
   * moved since the last checkpoint.
   */
  async checkpointHeadInSlices(): Promise<CheckpointOutcome | { ok: true; unchanged: true }> {
    const head = this.deps.audit.headPosition();
    if (head.seq === 0 || (this.verified !== null && this.verified.seq === head.seq && this.verified.hash === head.hash)) return { ok: true, unchanged: true };
    const resume = this.resumePoint();
    if (!resume.ok) return resume;
    if (resume.from.seq === head.seq && resume.from.hash === head.hash) {
      this.verified = head;
      return { ok: true, unchanged: true };
    }
    let check: RangeCheck = { ok: true, position: resume.from, checked: 0 };
    while (check.ok && check.position.seq < head.seq) {
      await nextTurn();
      if (this.stopped) return { ok: true, unchanged: true };
      check = this.deps.audit.verifyRange(check.position, head.seq, SLICE);
      if (check.ok && check.checked === 0) break;
    }
    return this.signVerified(check, head);
  }

  /**
   * On the first start over a chain written before it was keyed (legacy
   * events only, no keyed one yet), sign its head at once: from then on the
   * legacy events are protected by that checkpoint (they have no MAC).
   */
  sealLegacyChain(): void {
    // A keyed head means the chain has been keyed already (legacy rows only come first).
    const head = this.deps.audit.headPosition();
    if (head.seq === 0 || head.format === 'keyed') return;
    try {
      const newest = this.newestOnDisk();
      if (newest && newest.seq === head.seq && newest.hash === head.hash) return;
      const outcome = this.checkpointHead();
      if (outcome.ok) this.deps.log.info({ seq: outcome.checkpoint.seq, file: outcome.file }, 'signed a checkpoint of the legacy (unkeyed) audit chain');
      else this.deps.log.error({ brokenSeq: outcome.brokenSeq, reason: outcome.reason }, 'the legacy audit chain does not verify: no checkpoint signed');
    } catch (error) {
      // An unwritable checkpoint folder must not keep the service down; it is logged, and audit:checkpoint can be run later.
      this.deps.log.error({ err: error }, 'could not write the checkpoint of the legacy audit chain');
    }
  }

  /** `audit:verify --checkpoint`: the checkpoint's signature, the event at its `seq`, and the whole chain. */
  verifyAgainst(checkpoint: Checkpoint): CheckpointVerification {
    const signature = checkCheckpointSignature(this.deps.keys, checkpoint);
    if (signature === 'unknown_key') return { ok: false, error: 'checkpoint_invalid', reason: `signed with key id ${checkpoint.keyId}, which is not in the audit key ring` };
    if (signature === 'invalid') return { ok: false, error: 'checkpoint_invalid', reason: 'the signature does not verify: the checkpoint was not signed by this service, or was edited' };
    const full = this.deps.audit.verify();
    const contradiction = this.contradiction(checkpoint);
    // Report whichever break comes first in the chain.
    if (contradiction && (full.ok || (full.brokenSeq ?? Infinity) > contradiction.brokenSeq)) {
      return { ok: false, events: Math.min(full.events, contradiction.brokenSeq - 1), brokenSeq: contradiction.brokenSeq, reason: contradiction.reason, checkpointSeq: checkpoint.seq };
    }
    return { ...full, checkpointSeq: checkpoint.seq };
  }

  /**
   * A checkpoint of `position`, for a stretch of the chain the caller has
   * just verified (proofs); not written to disk. Refused, like the head's,
   * while the newest known checkpoint contradicts the chain.
   */
  signVerifiedPosition(position: ChainPosition): { ok: true; checkpoint: Checkpoint } | CheckpointRefusal {
    for (const known of [this.latest, this.verified]) {
      const contradiction = known ? this.contradiction(known) : null;
      if (contradiction) return { ok: false, events: contradiction.brokenSeq - 1, ...contradiction };
    }
    return { ok: true, checkpoint: signCheckpoint(this.deps.keys, position, this.deps.clock.now()) };
  }

  /** Every `intervalMinutes` (0 = never), checkpoint the head when it has moved. */
  start(intervalMinutes: number): void {
    this.latest = this.newestOnDisk();
    if (intervalMinutes === 0) return;
    this.timer = setInterval(() => this.tick(), intervalMinutes * 60_000);
    this.timer.unref();
  }

  /** Stop the timer and wait for a running checkpoint (before the database closes). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** One run of the timer; returns when it is done (tests call it directly). */
  async tick(): Promise<void> {
    if (this.running) return this.running;
    this.running = this.checkpointHeadInSlices()
      .then((outcome) => {
        if (!outcome.ok) this.deps.log.error({ brokenSeq: outcome.brokenSeq, reason: outcome.reason }, 'audit chain checkpoint refused');
        else if ('checkpoint' in outcome) this.deps.log.info({ seq: outcome.checkpoint.seq, file: outcome.file }, 'audit chain checkpoint written');
      })
      .catch((error: unknown) => this.deps.log.error({ err: error }, 'audit chain checkpoint failed'))
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  private signVerified(check: RangeCheck, head: ChainPosition): CheckpointOutcome {
    if (!check.ok) return { ok: false, events: check.position.seq, brokenSeq: check.brokenSeq, reason: check.reason };
    if (check.position.seq !== head.seq || check.position.hash !== head.hash) {
      return { ok: false, events: check.position.seq, brokenSeq: check.position.seq + 1, reason: 'the chain changed while it was verified' };
    }
    const checkpoint = signCheckpoint(this.deps.keys, head, this.deps.clock.now());
    const file = this.write(checkpoint);
    this.verified = head;
    this.latest = checkpoint;
    return { ok: true, checkpoint, file };
  }

  /**
   * Where verification may resume: the newest of (the position this process
   * last signed, the newest validly signed checkpoint on disk) that the
   * chain still matches, else the genesis. Refused when either contradicts
   * the chain: signing then would vouch for a truncated or rewritten history.
   */
  private resumePoint(): { ok: true; from: ChainPosition } | CheckpointRefusal {
    let from = GENESIS_POSITION;
    const onDisk = this.newestOnDisk();
    if (onDisk && (this.latest === null || onDisk.seq > this.latest.seq)) this.latest = onDisk;
    for (const known of [onDisk, this.verified]) {
      if (!known) continue;
      const contradiction = this.contradiction(known);
      if (contradiction) {
        return { ok: false, events: contradiction.brokenSeq - 1, brokenSeq: contradiction.brokenSeq, reason: `${contradiction.reason}; move the contradicted checkpoints aside after investigating (docs/operations.md)` };
      }
      const position = this.deps.audit.positionAt(known.seq);
      if (position && position.seq > from.seq) from = position;
    }
    return { ok: true, from };
  }

  /** Does the chain still have the checkpoint's hash at its `seq`? */
  private contradiction(known: { seq: number; hash: string }): { brokenSeq: number; reason: string } | null {
    const position = this.deps.audit.positionAt(known.seq);
    if (!position) {
      const head = this.deps.audit.headPosition();
      return { brokenSeq: head.seq + 1, reason: `truncated: the chain ends at seq ${head.seq}, before the checkpoint's seq ${known.seq}` };
    }
    if (position.hash !== known.hash) {
      return { brokenSeq: known.seq, reason: `rewritten: the event at seq ${known.seq} does not have the checkpoint's hash (the history up to it differs from what was signed)` };
    }
    return null;
  }

  private write(checkpoint: Checkpoint): string {
    mkdirSync(this.deps.dir, { recursive: true, mode: 0o755 });
    const name = `${String(checkpoint.seq).padStart(12, '0')}-${checkpoint.at.replace(/[-:.]/g, '')}.json`;
    const file = join(this.deps.dir, name);
    const temporary = join(this.deps.dir, `.${name}.tmp`);
    // Written whole, then renamed: a reader never sees half a checkpoint.
    writeFileSync(temporary, `${JSON.stringify(checkpoint)}\n`, { mode: 0o644 });
    renameSync(temporary, file);
    return file;
  }

  /** The newest checkpoint on disk with a valid signature; files that are not one are skipped (and logged). */
  private newestOnDisk(): Checkpoint | null {
    let names: string[];
    try {
      names = readdirSync(this.deps.dir).filter((n) => FILE_PATTERN.test(n)).sort().reverse().slice(0, SCAN_LIMIT);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    for (const name of names) {
      let parsed: ReturnType<typeof parseCheckpoint>;
      try {
        parsed = parseCheckpoint(JSON.parse(readFileSync(join(this.deps.dir, name), 'utf8')));
      } catch {
        parsed = { ok: false, reason: 'not JSON' };
      }
      if (parsed.ok && checkCheckpointSignature(this.deps.keys, parsed.checkpoint) === 'valid') return parsed.checkpoint;
      this.deps.log.warn({ file: name, reason: parsed.ok ? 'signature does not verify' : parsed.reason }, 'ignoring a file in the audit checkpoint folder');
    }
    return null;
  }
}
