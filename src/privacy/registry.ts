import { auditPrivacy } from '../audit/privacy.js';
import { passwordPrivacy } from '../auth/password/privacy.js';
import { sessionsPrivacy } from '../auth/session/privacy.js';
import { totpPrivacy } from '../auth/totp/privacy.js';
import { rateLimitPrivacy } from '../http/privacy.js';
import { orgsPrivacy } from '../orgs/privacy.js';
import { ssoPrivacy } from '../sso/privacy.js';
import { staffPrivacy } from '../staff/privacy.js';
import { usersPrivacy } from '../users/privacy.js';
import type { PrivacyContributor } from './contributor.js';
import { consentsAndTokensPrivacy } from './privacy.js';

/**
 * Every feature's privacy contributor, in erasure order: the hooks that
 * collect the person's IPs (sessions, audit) before the rate-limit hook that
 * uses them, and `users` last (its row is what the others refer to).
 * A new feature with personal data adds its contributor here;
 * `test/privacy/contributors.test.ts` fails until it does.
 */
export const PRIVACY_CONTRIBUTORS: readonly PrivacyContributor[] = Object.freeze([
  orgsPrivacy,
  sessionsPrivacy,
  passwordPrivacy,
  totpPrivacy,
  ssoPrivacy,
  staffPrivacy,
  consentsAndTokensPrivacy,
  auditPrivacy,
  rateLimitPrivacy,
  usersPrivacy,
]);
