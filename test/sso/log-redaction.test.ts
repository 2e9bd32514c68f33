/**
 * Sensitive data in logs: the OIDC callback URL carries the authorization
 * code and state, sign-in starts carry an email. Request logs print URLs,
 * so these values are redacted first (SECURITY.md "logs").
 */
import { describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/http/log-redaction.js';

describe('redactUrl', () => {
  it.each([
    ['/v1/sso/oidc/callback?code=abc&state=def&iss=https%3A%2F%2Fidp', '/v1/sso/oidc/callback?code=%5Bredacted%5D&state=%5Bredacted%5D&iss=https%3A%2F%2Fidp'],
    ['/v1/sso/start?email=a%40b.test&returnTo=%2F', '/v1/sso/start?email=%5Bredacted%5D&returnTo=%2F'],
    ['/password-reset?token=xyz', '/password-reset?token=%5Bredacted%5D'],
    ['/v1/me', '/v1/me'],
    ['/v1/staff/audit?orgId=1&cursor=2', '/v1/staff/audit?orgId=1&cursor=2'],
  ])('%s', (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });
});
