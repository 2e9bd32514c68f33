import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase } from '../../platform/db/sqlite.js';

export type SsoProtocol = 'oidc' | 'saml';

/** A pending SSO login (DESIGN.md rule 7: single-use, expiring, consumed atomically). */
export interface SsoTransaction {
  id: string;
  protocol: SsoProtocol;
  connectionId: string;
  stateHash: string;
  bindingHash: string;
  nonce: string | null;
  codeVerifier: string | null;
  requestId: string | null;
  returnTo: string;
  createdAt: Date;
  expiresAt: Date;
}

export type ConsumeOutcome = { kind: 'consumed'; transaction: SsoTransaction } | { kind: 'reused'; transaction: SsoTransaction } | { kind: 'unknown' };

export interface SsoTransactionRepository {
  /** Store a new transaction (and drop long-dead ones). */
  create(transaction: SsoTransaction, now: Date): Promise<void>;
  /**
   * Consume by state hash: exactly one caller moves `consumed_at` from NULL
   * (two concurrent callbacks with one state: one wins). Expiry is the
   * caller's decision, so an expired transaction is consumed too.
   */
  consume(stateHash: string, now: Date): Promise<ConsumeOutcome>;
  /** Look a transaction up without consuming it (SAML: node-saml asks before it spends). */
  find(stateHash: string): Promise<{ transaction: SsoTransaction; consumed: boolean } | null>;
}

interface TransactionRow {
  id: string;
  protocol: string;
  connection_id: string;
  state_hash: string;
  binding_hash: string;
  nonce: string | null;
  code_verifier: string | null;
  request_id: string | null;
  return_to: string;
  created_at: number;
  expires_at: number;
  consumed_at: number | null;
}

function toTransaction(row: TransactionRow): SsoTransaction {
  return {
    id: row.id,
    protocol: row.protocol as SsoProtocol,
    connectionId: row.connection_id,
    stateHash: row.state_hash,
    bindingHash: row.binding_hash,
    nonce: row.nonce,
    codeVerifier: row.code_verifier,
    requestId: row.request_id,
    returnTo: row.return_to,
    createdAt: new Date(row.created_at),
    expiresAt: new Date(row.expires_at),
  };
}

/** Consumed or expired rows are kept this long (reuse is then reported as such), then purged. */
const RETENTION_MS = 24 * 60 * 60 * 1000;

export class SqliteSsoTransactionRepository implements SsoTransactionRepository {
  private readonly sqlite: BetterSqlite3.Database;

  constructor(private readonly database: SqliteDatabase) {
    this.sqlite = database.sqlite;
  }

  async create(t: SsoTransaction, now: Date): Promise<void> {
    this.database.transaction(() => {
      this.sqlite.prepare('DELETE FROM sso_transactions WHERE expires_at < ?').run(now.getTime() - RETENTION_MS);
      this.sqlite
        .prepare(
          `INSERT INTO sso_transactions (id, protocol, connection_id, state_hash, binding_hash, nonce, code_verifier, request_id, return_to, created_at, expires_at, consumed_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
        )
        .run(
          t.id, t.protocol, t.connectionId, t.stateHash, t.bindingHash, t.nonce, t.codeVerifier, t.requestId, t.returnTo,
          t.createdAt.getTime(), t.expiresAt.getTime(),
        );
    });
  }

  async find(stateHash: string): Promise<{ transaction: SsoTransaction; consumed: boolean } | null> {
    const row = this.sqlite.prepare('SELECT * FROM sso_transactions WHERE state_hash = ?').get(stateHash) as TransactionRow | undefined;
    return row ? { transaction: toTransaction(row), consumed: row.consumed_at !== null } : null;
  }

  async consume(stateHash: string, now: Date): Promise<ConsumeOutcome> {
    return this.database.transaction((): ConsumeOutcome => {
      const consumed = this.sqlite
        .prepare('UPDATE sso_transactions SET consumed_at = ? WHERE state_hash = ? AND consumed_at IS NULL RETURNING *')
        .get(now.getTime(), stateHash) as TransactionRow | undefined;
      if (consumed) return { kind: 'consumed', transaction: toTransaction(consumed) };
      const used = this.sqlite.prepare('SELECT * FROM sso_transactions WHERE state_hash = ?').get(stateHash) as TransactionRow | undefined;
      return used ? { kind: 'reused', transaction: toTransaction(used) } : { kind: 'unknown' };
    });
  }
}
