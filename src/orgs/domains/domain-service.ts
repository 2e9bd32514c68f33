import type { AuditActor, AuditEventInput, RequestContext } from '../../audit/events.js';
import type { Clock } from '../../platform/clock.js';
import { constantTimeEqual, randomToken } from '../../platform/crypto/tokens.js';
import type { DnsResolver } from '../../platform/dns.js';
import { AppError, validationFailed } from '../../platform/errors.js';
import { newId } from '../../platform/ids.js';
import type { User } from '../../users/user.js';
import type { DomainRepository, OrgDomain, VerificationMethod } from './domain-repository.js';

/** Where the verification TXT record lives: `_cleverom-challenge.<domain>` (an underscore label, RFC 8552). */
export const CHALLENGE_LABEL = '_cleverom-challenge';
export const TXT_VALUE_PREFIX = 'cleverom-verification=';
const DNS_TIMEOUT_MS = 5_000;

/** RFC 1035 §2.3.1 / RFC 5890 host name: ASCII labels (IDNs as punycode), at least two labels. */
const DOMAIN_PATTERN = /^(?=.{3,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Lower-case, drop one trailing dot; null when not a valid domain name. */
export function normalizeDomain(input: string): string | null {
  const domain = input.trim().toLowerCase().replace(/\.$/, '');
  return DOMAIN_PATTERN.test(domain) ? domain : null;
}

/** The domain part of an email address, or null. */
export function emailDomain(email: string): string | null {
  const at = email.lastIndexOf('@');
  if (at <= 0 || at !== email.indexOf('@')) return null;
  return normalizeDomain(email.slice(at + 1));
}

export interface DomainView {
  domain: string;
  verificationToken: string;
  txtRecord: { name: string; type: 'TXT'; value: string };
  verified: boolean;
  verifiedAt: string | null;
  verificationMethod: VerificationMethod | null;
  createdAt: string;
}

/** Answers "has this organization verified this domain?" (SSO linking and home-realm discovery). */
export interface VerifiedDomains {
  isVerifiedFor(orgId: string, domain: string): Promise<boolean>;
  /** The organization that verified `domain`, if any. */
  verifiedOwner(domain: string): Promise<string | null>;
}

/**
 * Organization domains: claim, prove control through a DNS TXT record,
 * release. A name can be verified by one organization only. Manual
 * verification (operator CLI today, staff `security_admin` later) is a
 * separate, separately audited path.
 */
export class DomainService implements VerifiedDomains {
  constructor(
    private readonly deps: {
      repo: DomainRepository;
      resolver: DnsResolver;
      clock: Clock;
    },
  ) {}

  view(claim: OrgDomain): DomainView {
    return {
      domain: claim.domain,
      verificationToken: claim.verificationToken,
      txtRecord: { name: `${CHALLENGE_LABEL}.${claim.domain}`, type: 'TXT', value: `${TXT_VALUE_PREFIX}${claim.verificationToken}` },
      verified: claim.verifiedAt !== null,
      verifiedAt: claim.verifiedAt?.toISOString() ?? null,
      verificationMethod: claim.verificationMethod,
      createdAt: claim.createdAt.toISOString(),
    };
  }

  async list(orgId: string): Promise<DomainView[]> {
    return (await this.deps.repo.listByOrg(orgId)).map((d) => this.view(d));
  }

  async isVerifiedFor(orgId: string, domain: string): Promise<boolean> {
    return (await this.deps.repo.verifiedClaim(domain))?.orgId === orgId;
  }

  async verifiedOwner(domain: string): Promise<string | null> {
    return (await this.deps.repo.verifiedClaim(domain))?.orgId ?? null;
  }

  private parse(input: string): string {
    const domain = normalizeDomain(input);
    if (!domain) throw validationFailed([{ field: 'domain', message: 'must be a domain name such as example.com' }]);
    return domain;
  }

  private event(action: string, orgId: string, actor: AuditActor, domain: string, data: AuditEventInput['data'], context?: RequestContext): AuditEventInput {
    return {
      action,
      actor,
      orgId,
      subjectId: orgId,
      data: { domain, ...data },
      ...(context && actor.type === 'user' ? { pii: { userId: actor.id, ...context } } : {}),
    };
  }

  /** `POST /v1/orgs/:orgId/domains`: a claim with a fresh verification token. */
  async claim(orgId: string, actor: User, input: string, context: RequestContext): Promise<DomainView> {
    const domain = this.parse(input);
    const claim: OrgDomain = {
      id: newId(),
      orgId,
      domain,
      verificationToken: randomToken(24),
      verifiedAt: null,
      verificationMethod: null,
      createdAt: this.deps.clock.now(),
    };
    const outcome = await this.deps.repo.claim(claim, this.event('org.domain.claimed', orgId, { type: 'user', id: actor.id }, domain, {}, context));
    if (outcome === 'duplicate') throw new AppError('conflict', { publicDetail: 'Your organization has already claimed this domain.' });
    if (outcome === 'verified_elsewhere') throw new AppError('conflict', { publicDetail: 'This domain is already verified by another organization.' });
    return this.view(claim);
  }

  private async claimOf(orgId: string, domain: string): Promise<OrgDomain> {
    const claim = await this.deps.repo.find(orgId, domain);
    if (!claim) throw new AppError('not_found', { publicDetail: 'Claim the domain first: POST /v1/orgs/:orgId/domains.' });
    return claim;
  }

  /**
   * `POST /v1/orgs/:orgId/domains/:domain/verify`: look for the TXT record
   * `_cleverom-challenge.<domain>` = `cleverom-verification=<token>`.
   */
  async verifyByDns(orgId: string, actor: User, input: string, context: RequestContext): Promise<DomainView> {
    const domain = this.parse(input);
    const claim = await this.claimOf(orgId, domain);
    if (claim.verifiedAt) return this.view(claim);
    const name = `${CHALLENGE_LABEL}.${domain}`;
    const expected = `${TXT_VALUE_PREFIX}${claim.verificationToken}`;
    const records = await this.txtRecords(name);
    const actorRef: AuditActor = { type: 'user', id: actor.id };
    if (!records.some((r) => constantTimeEqual(r, expected))) {
      await this.deps.repo.recordFailure(this.event('org.domain.verification_failed', orgId, actorRef, domain, { method: 'dns', recordsFound: records.length }, context));
      throw validationFailed([{ field: 'domain', message: `no TXT record ${expected.slice(0, TXT_VALUE_PREFIX.length)}… found at ${name}` }]);
    }
    return this.markVerified(claim, 'dns', this.event('org.domain.verified', orgId, actorRef, domain, { method: 'dns' }, context));
  }

  /**
   * Operator / staff override of DNS verification (CLI `domain:verify`; the
   * staff console's `security_admin` route calls this too). Creates the claim
   * when missing. Audited as `manual` with the acting principal.
   */
  async verifyManually(input: { orgId: string; domain: string; actor: AuditActor; reason?: string; context?: RequestContext }): Promise<DomainView> {
    const domain = this.parse(input.domain);
    let claim = await this.deps.repo.find(input.orgId, domain);
    if (!claim) {
      const fresh: OrgDomain = {
        id: newId(),
        orgId: input.orgId,
        domain,
        verificationToken: randomToken(24),
        verifiedAt: null,
        verificationMethod: null,
        createdAt: this.deps.clock.now(),
      };
      const outcome = await this.deps.repo.claim(fresh, this.event('org.domain.claimed', input.orgId, input.actor, domain, { by: 'manual' }, input.context));
      if (outcome === 'verified_elsewhere') throw new AppError('conflict', { publicDetail: 'This domain is already verified by another organization.' });
      claim = await this.claimOf(input.orgId, domain);
    }
    if (claim.verifiedAt) return this.view(claim);
    const data = { method: 'manual', ...(input.reason === undefined ? {} : { reason: input.reason.slice(0, 500) }) };
    return this.markVerified(claim, 'manual', this.event('org.domain.verified', input.orgId, input.actor, domain, data, input.context));
  }

  private async markVerified(claim: OrgDomain, method: VerificationMethod, event: AuditEventInput): Promise<DomainView> {
    const at = this.deps.clock.now();
    const outcome = await this.deps.repo.markVerified(claim.id, method, at, event);
    if (outcome === 'verified_elsewhere') throw new AppError('conflict', { publicDetail: 'This domain is already verified by another organization.' });
    return this.view({ ...claim, verifiedAt: at, verificationMethod: method });
  }

  /** `DELETE /v1/orgs/:orgId/domains/:domain`. */
  async release(orgId: string, actor: User, input: string, context: RequestContext): Promise<void> {
    const domain = this.parse(input);
    const released = await this.deps.repo.release(orgId, domain, this.event('org.domain.released', orgId, { type: 'user', id: actor.id }, domain, {}, context));
    if (!released) throw new AppError('not_found');
  }

  /** TXT records at `name`, each joined from its character-strings; none on any DNS error. */
  private async txtRecords(name: string): Promise<string[]> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = await Promise.race([
        this.deps.resolver.resolveTxt(name),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('DNS timeout')), DNS_TIMEOUT_MS);
        }),
      ]);
      return answer.map((chunks) => chunks.join(''));
    } catch {
      return [];
    } finally {
      clearTimeout(timer);
    }
  }
}
