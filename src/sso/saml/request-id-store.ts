import type { Clock } from '../../platform/clock.js';
import { hashToken, randomToken } from '../../platform/crypto/tokens.js';
import { newId } from '../../platform/ids.js';
import type { SsoTransaction, SsoTransactionRepository } from '../state/transaction-repository.js';
import { SAML_REQUEST_TTL_MS, type RequestIdStore } from './saml-sp.js';

/** The transaction key of an AuthnRequest id: namespaced per connection, hashed like every other state key. */
export function samlRequestKey(connectionId: string, requestId: string): string {
  return hashToken(`saml:${connectionId}:${requestId}`);
}

/**
 * node-saml's request-id cache over the `sso_transactions` table (DESIGN.md
 * rule 7; SECURITY.md "SAML state": InResponseTo = a stored, single-use
 * request id). One instance per request and connection; the rows are shared
 * by every process using the database, and a key of one connection is
 * invisible to another (`samlRequestKey`).
 *
 * - `saveAsync` (AuthnRequest issued) stores the login transaction with the
 *   page to return to, valid {@link SAML_REQUEST_TTL_MS} by our clock.
 * - `getAsync` answers only for an unspent, unexpired request of this
 *   connection.
 * - `removeAsync` spends it atomically (one concurrent caller wins); the
 *   instance remembers what it spent, and {@link claim} lets the service
 *   insist that this request — not a concurrent one — spent it.
 */
export class DatabaseRequestIdStore implements RequestIdStore {
  private readonly spent = new Map<string, SsoTransaction>();

  constructor(
    private readonly deps: { transactions: SsoTransactionRepository; clock: Clock },
    private readonly connectionId: string,
    /** Where to go after the login this request starts (used by `saveAsync` only). */
    private readonly returnTo: string = '/',
  ) {}

  async saveAsync(key: string, value: string): Promise<{ value: string; createdAt: number }> {
    const now = this.deps.clock.now();
    await this.deps.transactions.create(
      {
        id: newId(),
        protocol: 'saml',
        connectionId: this.connectionId,
        stateHash: samlRequestKey(this.connectionId, key),
        // No browser can present this: the ACS POST is cross-site, so the binding is the request id itself.
        bindingHash: hashToken(randomToken(32)),
        nonce: null,
        codeVerifier: null,
        requestId: key,
        returnTo: this.returnTo,
        createdAt: now,
        expiresAt: new Date(now.getTime() + SAML_REQUEST_TTL_MS),
      },
      now,
    );
    return { value, createdAt: now.getTime() };
  }

  async getAsync(key: string): Promise<string | null> {
    const found = await this.deps.transactions.find(samlRequestKey(this.connectionId, key));
    if (!found || found.consumed || !this.belongsHere(found.transaction, key)) return null;
    if (found.transaction.expiresAt.getTime() <= this.deps.clock.now().getTime()) return null;
    return found.transaction.createdAt.toISOString();
  }

  async removeAsync(key: string | null): Promise<string | null> {
    if (key === null) return null;
    const outcome = await this.deps.transactions.consume(samlRequestKey(this.connectionId, key), this.deps.clock.now());
    if (outcome.kind !== 'consumed' || !this.belongsHere(outcome.transaction, key)) return null;
    this.spent.set(key, outcome.transaction);
    return outcome.transaction.createdAt.toISOString();
  }

  /**
   * After node-saml accepted a response to `requestId`: the transaction,
   * spent by this request (now, if node-saml did not spend it itself), or
   * null when another request spent it first (a replay or a race).
   */
  async claim(requestId: string): Promise<SsoTransaction | null> {
    if (!this.spent.has(requestId)) await this.removeAsync(requestId);
    return this.spent.get(requestId) ?? null;
  }

  private belongsHere(transaction: SsoTransaction, key: string): boolean {
    return transaction.protocol === 'saml' && transaction.connectionId === this.connectionId && transaction.requestId === key;
  }
}
