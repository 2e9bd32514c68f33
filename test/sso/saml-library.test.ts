import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { REDACT_PATHS } from '../../src/http/logging.js';
import { requestLogView } from '../../src/http/log-redaction.js';
import { registerPolicy, type PolicyDeps } from '../../src/http/policy.js';
import { PROJECT_ROOT } from '../helpers/app.js';
import { fieldsFor, postAcs, samlWorld, startSaml, type SamlWorld } from '../helpers/saml.js';
import { decode, encode } from '../helpers/saml-idp.js';
import { applyXsw } from '../helpers/saml-xsw.js';

/**
 * The SAML library boundary (DESIGN.md: one importing file per security
 * library; SECURITY.md "SAML SP": version floors), the policy switch that
 * exempts the ACS from the Origin check, and what reaches the logs.
 */

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

function importers(pkg: string): string[] {
  const pattern = new RegExp(`from '${pkg.replace(/[/@.-]/g, '\\$&')}(/[^']*)?'|import\\('${pkg.replace(/[/@.-]/g, '\\$&')}`);
  return sourceFiles(join(PROJECT_ROOT, 'src'))
    .filter((f) => pattern.test(readFileSync(f, 'utf8')))
    .map((f) => relative(PROJECT_ROOT, f));
}

/** a ≥ b for dotted versions. */
function atLeast(a: string, b: string): boolean {
  const x = a.split(/[.-]/).map(Number);
  const y = b.split(/[.-]/).map(Number);
  for (let i = 0; i < 3; i += 1) {
    if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0);
  }
  return true;
}

describe('library boundary', () => {
  it('imports @node-saml/node-saml and @xmldom/xmldom from one file each, and samlify never', () => {
    expect(importers('@node-saml/node-saml')).toEqual(['src/sso/saml/saml-sp.ts']);
    expect(importers('@xmldom/xmldom')).toEqual(['src/sso/saml/xml.ts']);
    expect(importers('samlify')).toEqual([]);
    expect(importers('xml-crypto')).toEqual([]);
  });

  it('keeps samlify a devDependency (test IdP only)', () => {
    const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    expect(pkg.dependencies.samlify).toBeUndefined();
    expect(pkg.devDependencies.samlify).toBeDefined();
    expect(pkg.dependencies['@node-saml/node-saml']).toBeDefined();
  });

  it.each([
    ['@node-saml/node-saml', '5.1.0', 'CVE-2025-54369 / CVE-2025-54419'],
    ['xml-crypto', '6.1.2', 'CVE-2025-29774 / CVE-2025-29775'],
    ['@xmldom/xmldom', '0.8.15', 'SECURITY.md floor'],
  ])('every production copy of %s in the lockfile is at least %s (%s)', (name, floor) => {
    const lock = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; dev?: boolean }> };
    const copies = Object.entries(lock.packages).filter(([path, entry]) => path.endsWith(`node_modules/${name}`) && entry.dev !== true);
    expect(copies.length).toBeGreaterThan(0);
    for (const [path, entry] of copies) expect(atLeast(entry.version ?? '0', floor), `${path}@${entry.version}`).toBe(true);
  });
});

describe('crossSitePost route policy', () => {
  const deps = {} as PolicyDeps;
  it.each([
    ['a GET route', { method: 'GET', config: { crossSitePost: true } }],
    ['an authenticated route', { method: 'POST', config: { crossSitePost: true, auth: 'user' } }],
    ['a feature-gated route', { method: 'POST', config: { crossSitePost: true, feature: 'sso' } }],
  ] as const)('is refused at boot on %s', async (_label, route) => {
    const app = Fastify();
    registerPolicy(app, deps);
    expect(() => app.route({ method: route.method, url: '/x', config: route.config as never, handler: async () => 'x' })).toThrow(/crossSitePost/);
    await app.close();
  });
});

describe('logs', () => {
  let w: SamlWorld;
  afterEach(async () => {
    await w.t.close();
  });

  /** SECURITY.md "logs" and "errors": no SAML payload, no XML, no stack in the logs of refused logins. */
  it('never log the SAMLResponse, its XML or a stack trace — only the refusal reason', async () => {
    const lines: string[] = [];
    w = await samlWorld({
      logger: {
        level: 'info',
        redact: { paths: REDACT_PATHS, censor: '[redacted]' },
        serializers: { req: requestLogView },
        stream: { write: (line: string) => void lines.push(line) },
      },
    });
    const genuine = await w.idp.response(fieldsFor(w.connection, await startSaml(w.t, w.idp, w.connection), { email: 'mallory@acme.test' }));
    const attacks = [
      encode(decode(genuine).replace('>mallory@acme.test<', '>owner@acme.test<')),
      applyXsw('XSW3', genuine, { nameId: 'owner', email: 'owner@acme.test' }),
      encode('<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>'),
      'garbage',
    ];
    for (const attack of attacks) expect((await postAcs(w.t, w.connection, attack, { relayState: '/x' })).statusCode).toBe(400);
    // (Each refusal spent the request id: a new login round for the success.)
    const success = await w.idp.response(fieldsFor(w.connection, await startSaml(w.t, w.idp, w.connection), { email: 'mallory@acme.test' }));
    expect((await postAcs(w.t, w.connection, success)).statusCode).toBe(302);
    const log = lines.join('\n');
    expect(log).toMatch(/"reason":"signature_invalid"/);
    expect(log).toMatch(/"reason":"doctype_refused"/);
    for (const payload of [genuine, success, ...attacks]) expect(log).not.toContain(payload.slice(0, 40));
    expect(log).not.toMatch(/samlp:|<saml|ENTITY|mallory@acme\.test|    at |node_modules/);
  });
});
