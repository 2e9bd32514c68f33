import type { PrivacyContributor } from '../privacy/contributor.js';

/**
 * Per-IP rate-limit counters (`<route>|ip:<address>`). They are not linked to
 * a person, so nothing is exported; on erasure the counters of the addresses
 * the person was seen from (collected by the sessions and audit hooks, which
 * run earlier) are deleted, so those IPs do not outlive the account in the
 * database file. Must be registered after those hooks.
 */
export const rateLimitPrivacy: PrivacyContributor = {
  name: 'rate_limit',
  tables: ['rate_limit_log'],
  export() {
    return {};
  },
  erase(sqlite, subject) {
    const remove = sqlite.prepare("DELETE FROM rate_limit_log WHERE key = @id OR substr(key, -length(@id) - 1) = '|' || @id");
    for (const ip of subject.ips) remove.run({ id: `ip:${ip}` });
  },
};
