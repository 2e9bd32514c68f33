/**
 * EU data residency (docs/operations.md): with `DATA_REGION_ALLOWLIST` set,
 * the configuration is refused when the SMTP relay or the database lives on
 * a host outside the list, and SSO can ask the same question about an
 * issuer. Attack covered: a configuration mistake (or a pasted IdP URL)
 * silently moving personal data out of the region. No secret of the URL
 * (SMTP password) appears in the message.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dataRegionProblem, hostInDataRegion, parseDataRegionAllowlist } from '../../src/config/data-region.js';
import { ConfigError, loadConfig } from '../../src/config/load-config.js';
import { PROJECT_ROOT } from '../helpers/app.js';

const EU = '.eu,.fi,.cleverom.fi,localhost,127.0.0.1';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env, PROJECT_ROOT);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  return [];
}

describe('DATA_REGION_ALLOWLIST', () => {
  it('is off by default: any SMTP host is accepted', () => {
    const config = loadConfig({ SMTP_URL: 'smtps://u:p@smtp.example.com:465' }, PROJECT_ROOT);
    expect(config.dataRegionAllowlist).toBeNull();
  });

  it('accepts an SMTP relay and a local database inside the region', () => {
    const config = loadConfig({ DATA_REGION_ALLOWLIST: EU, SMTP_URL: 'smtps://user:pw@smtp.mailer.eu:465', DATABASE_URL: 'file:./data/x.db' }, PROJECT_ROOT);
    expect(config.dataRegionAllowlist).toEqual(['.eu', '.fi', '.cleverom.fi', 'localhost', '127.0.0.1']);
  });

  it('refuses an SMTP relay outside the region, without echoing its credentials', () => {
    const problems = problemsOf({ DATA_REGION_ALLOWLIST: EU, SMTP_URL: 'smtps://user:hunter2secret@smtp.sendgrid.net:465' });
    expect(problems).toEqual(['SMTP_URL host "smtp.sendgrid.net" is outside DATA_REGION_ALLOWLIST']);
    expect(problems.join()).not.toContain('hunter2secret');
  });

  it('refuses a database host outside the region, with every other problem at once', () => {
    const problems = problemsOf({ DATA_REGION_ALLOWLIST: EU, DATABASE_URL: 'file://db.us-east-1.example.com/cleverom.db', SMTP_URL: 'smtp://relay.example.us' });
    expect(problems).toEqual(
      expect.arrayContaining([
        'DATABASE_URL host "db.us-east-1.example.com" is outside DATA_REGION_ALLOWLIST',
        'SMTP_URL host "relay.example.us" is outside DATA_REGION_ALLOWLIST',
      ]),
    );
    expect(problemsOf({ DATA_REGION_ALLOWLIST: EU, DATABASE_URL: 'file://db.cleverom.fi/cleverom.db' }).filter((p) => p.includes('DATA_REGION'))).toEqual([]);
  });

  it.each([
    ['an entry that is not a host', 'bad host!', /entry "bad host!" is not a host name/],
    ['a list of nothing', ' , ', /lists no host/],
  ])('refuses %s', (_label, value, expected) => {
    expect(problemsOf({ DATA_REGION_ALLOWLIST: value }).join('\n')).toMatch(expected);
  });

  it.each([
    ['smtp.example.eu', true],
    ['EXAMPLE.EU.', true],
    ['login.cleverom.fi', true],
    ['localhost', true],
    ['127.0.0.1', true],
    ['evil-eu', false],
    ['eu.evil.com', false],
    ['example.eu.evil.com', false],
    ['127.0.0.2', false],
    ['', false],
  ])('matches %s → %s on whole labels', (host, inside) => {
    expect(hostInDataRegion(parseDataRegionAllowlist(EU).entries, host)).toBe(inside);
  });

  it('answers the SSO question for an issuer URL', () => {
    const list = parseDataRegionAllowlist(EU).entries;
    expect(dataRegionProblem(list, 'issuer', 'https://idp.partner.fi/realms/acme')).toBeNull();
    expect(dataRegionProblem(list, 'issuer', 'https://login.microsoftonline.com/tenant/v2.0')).toBe('issuer host "login.microsoftonline.com" is outside DATA_REGION_ALLOWLIST');
    expect(dataRegionProblem(list, 'issuer', 'not a url')).toBe('issuer is not a URL');
    expect(dataRegionProblem(null, 'issuer', 'https://login.microsoftonline.com/')).toBeNull();
  });
});

/**
 * "No telemetry leaves the process": the only code that may open network
 * connections is the mailer (SMTP), DNS lookups for domain verification and
 * IdP address checks, and the SSO client behind the SSRF guard. A new
 * outbound path (an analytics SDK, an error reporter, a fetch to a third
 * party) fails here until it is reviewed for residency and listed.
 */
describe('outbound connections', () => {
  const ALLOWED = new Set(['src/platform/mailer.ts', 'src/platform/dns.ts', 'src/sso/connections/ssrf-guard.ts', 'src/sso/oidc/oidc-client.ts']);
  const NETWORK = /from '(node:)?(http|https|http2|dgram|tls|dns)'|from '(nodemailer|openid-client|undici|axios|got|node-fetch)'|\bfetch\(|import \{[^}]*\b(connect|createConnection|Socket)\b[^}]*\} from '(node:)?net'/;
  const TELEMETRY = /^(@sentry\/|newrelic|dd-trace|@opentelemetry\/|posthog|@segment\/|mixpanel|applicationinsights|@datadog\/|bugsnag|@bugsnag\/|rollbar|@honeybadger)/;

  function sources(dir: string): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
      const path = join(dir, entry.name);
      return entry.isDirectory() ? sources(path) : entry.name.endsWith('.ts') ? [path] : [];
    });
  }

  it('are opened only by the mailer, DNS and the SSO client', () => {
    const offenders = sources(join(PROJECT_ROOT, 'src'))
      .map((file) => relative(PROJECT_ROOT, file).split('\\').join('/'))
      .filter((file) => !ALLOWED.has(file) && NETWORK.test(readFileSync(join(PROJECT_ROOT, file), 'utf8')));
    expect(offenders).toEqual([]);
    // The pattern is not vacuous: each allowed file does open connections.
    for (const file of ALLOWED) expect(NETWORK.test(readFileSync(join(PROJECT_ROOT, file), 'utf8')), file).toBe(true);
  });

  it('no telemetry or error-reporting SDK is a dependency', () => {
    const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    expect(Object.keys(pkg.dependencies ?? {}).filter((name) => TELEMETRY.test(name))).toEqual([]);
  });
});
