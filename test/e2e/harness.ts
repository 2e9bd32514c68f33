import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ManualClock } from '../../src/platform/clock.js';
import { buildTestApp, PROJECT_ROOT, type TestApp } from '../helpers/app.js';

/**
 * End-to-end harness: the real app listening on 127.0.0.1 with PUBLIC_URL
 * equal to the origin the browser uses (the Origin check compares them),
 * and Debian's Chromium driven by playwright-core. No browser is ever
 * downloaded: without /usr/bin/chromium the suites skip and say why
 * (.ci/run installs it).
 */
export const CHROMIUM = '/usr/bin/chromium';
export const HAS_CHROMIUM = existsSync(CHROMIUM);
export const SKIP_REASON = `Chromium is not installed at ${CHROMIUM} (apt-get install -y chromium); the browser tests are skipped.`;
export const SCREENSHOTS = join(PROJECT_ROOT, 'test-results', 'e2e');

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** A free TCP port on the loopback (the app must know its origin before it listens). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface LiveApp extends TestApp {
  origin: string;
}

/**
 * The real app on a real port. Its clock starts at the real time: the
 * browser judges cookie expiry by its own clock, and the tests advance the
 * app's clock by hand (TOTP steps).
 */
export async function startApp(env: Record<string, string> = {}, options: Parameters<typeof buildTestApp>[0] = {}): Promise<LiveApp> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const t = await buildTestApp({ clock: new ManualClock(new Date()), ...options, env: { PUBLIC_URL: origin, PORT: String(port), HOST: '127.0.0.1', ...env } });
  await t.app.listen({ host: '127.0.0.1', port });
  return Object.assign(t, { origin });
}

/** Headless Chromium; each launch uses a fresh temporary profile (user data dir) that Playwright removes on close. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** One person's browser: its own cookies, our origin as the base URL. */
export async function personContext(browser: Browser, origin: string, options: { bypassCSP?: boolean } = {}): Promise<BrowserContext> {
  const context = await browser.newContext({ baseURL: origin, bypassCSP: options.bypassCSP ?? false, locale: 'en-GB' });
  context.setDefaultTimeout(10_000);
  context.setDefaultNavigationTimeout(15_000);
  return context;
}

/**
 * Run a flow; when it fails, save a screenshot of every page still open in
 * `contexts` under test-results/e2e/ before rethrowing.
 */
export async function withScreenshots(name: string, contexts: () => BrowserContext[], flow: () => Promise<void>): Promise<void> {
  try {
    await flow();
  } catch (error) {
    mkdirSync(SCREENSHOTS, { recursive: true });
    const slug = name.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').toLowerCase();
    let n = 0;
    for (const context of contexts()) {
      for (const page of context.pages()) {
        n += 1;
        await page.screenshot({ path: join(SCREENSHOTS, `${slug}-${n}.png`), fullPage: true }).catch(() => undefined);
      }
    }
    throw error;
  }
}

const require = createRequire(import.meta.url);
let axeSource: string | null = null;

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[]; html: string }[];
}

/**
 * Run axe-core in the page (WCAG 2.x A/AA rules) and return its serious and
 * critical violations. The page's CSP forbids injected scripts, so the
 * context running this must be created with `bypassCSP` (tests only).
 */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  axeSource ??= readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  await page.addScriptTag({ content: axeSource });
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: (context: unknown, options: unknown) => Promise<{ violations: AxeViolation[] }> } }).axe;
    const result = await axe.run((globalThis as unknown as { document: unknown }).document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] }, resultTypes: ['violations'] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => ({ target: n.target, html: n.html })) }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}
