import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GOOD_PASSWORD, PUBLIC_ORIGIN, asUser, buildTestApp, sessionCookie, signup, uniqueEmail, type TestApp } from '../helpers/app.js';

/**
 * `POST /v1/signup` (API.md "Sign-up, login, sessions") and the password
 * policy of NIST SP 800-63B rev 4 §3.1.1.2 (SECURITY.md "password").
 */

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await t.close();
});

interface SignupBody {
  orgName?: unknown;
  name?: unknown;
  email?: unknown;
  password?: unknown;
  ageConfirmed?: unknown;
  [extra: string]: unknown;
}

function body(overrides: SignupBody = {}): SignupBody {
  return { orgName: 'Acme Oy', name: 'Ann Owner', email: uniqueEmail('signup'), password: GOOD_PASSWORD, ageConfirmed: true, ...overrides };
}

const postSignup = (payload: SignupBody) => t.app.inject({ method: 'POST', url: '/v1/signup', payload });

/** Row counts of the tables a sign-up writes. */
function counts(): { users: number; orgs: number; sessions: number; audit: number } {
  const n = (table: string) => (t.services.database.sqlite.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
  return { users: n('users'), orgs: n('orgs'), sessions: n('sessions'), audit: n('audit_events') };
}

function expectProblem(response: { statusCode: number; headers: Record<string, unknown>; json: () => unknown }, status: number, code: string): Record<string, unknown> {
  expect(response.statusCode).toBe(status);
  expect(String(response.headers['content-type'])).toContain('application/problem+json');
  const problem = response.json() as Record<string, unknown>;
  expect(problem).toMatchObject({ status, code });
  expect(typeof problem.type).toBe('string');
  expect(typeof problem.title).toBe('string');
  return problem;
}

function errorFields(problem: Record<string, unknown>): string[] {
  return (problem.errors as { field: string }[]).map((e) => e.field);
}

describe('POST /v1/signup — success', () => {
  it('creates a free organization with the caller as owner and answers 201 with a session cookie', async () => {
    const email = uniqueEmail('founder');
    const response = await postSignup(body({ email, orgName: 'Founders Ltd', name: 'Fay Founder' }));
    expect(response.statusCode).toBe(201);
    const { user, organization } = response.json();
    expect(user).toMatchObject({ email, name: 'Fay Founder', role: 'owner', orgId: organization.id });
    expect(user.passwordHash).toBeUndefined();
    expect(JSON.stringify(response.json())).not.toContain('argon2');
    expect(organization).toMatchObject({ name: 'Founders Ltd', plan: 'free' });
    expect(Array.isArray(organization.features)).toBe(true);
    expect(new Date(user.createdAt).toISOString()).toBe(user.createdAt);

    const cookie = response.cookies.find((c) => c.name === 'cleverom_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    expect(cookie?.value.length).toBeGreaterThanOrEqual(43);

    // The cookie is a working session for the new owner.
    const me = await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(sessionCookie(response)) });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ user: { id: user.id, role: 'owner' }, organization: { id: organization.id, plan: 'free' } });
    expect(counts()).toMatchObject({ users: 1, orgs: 1, sessions: 1 });
  });

  it('stores the email normalised (lower-case) so the owner can log in with any case', async () => {
    const response = await postSignup(body({ email: 'Mixed.Case@Example.COM' }));
    expect(response.statusCode).toBe(201);
    expect(response.json().user.email).toBe('mixed.case@example.com');
    const login = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: 'MIXED.case@example.com', password: GOOD_PASSWORD } });
    expect(login.statusCode).toBe(200);
  });

  it('records the sign-up in the audit log, without the password', async () => {
    await postSignup(body());
    const actions = (t.services.database.sqlite.prepare('SELECT action FROM audit_events ORDER BY seq').all() as { action: string }[]).map((r) => r.action);
    expect(actions).toEqual(expect.arrayContaining(['org.created', 'user.signup']));
    expect(JSON.stringify(t.services.database.sqlite.prepare('SELECT * FROM audit_events').all())).not.toContain(GOOD_PASSWORD);
  });

  it('stores only an argon2id hash of the password', async () => {
    await postSignup(body());
    const row = t.services.database.sqlite.prepare('SELECT password_hash FROM users').get() as { password_hash: string };
    expect(row.password_hash).toMatch(/^\$argon2id\$/);
    expect(row.password_hash).not.toContain(GOOD_PASSWORD);
  });
});

describe('POST /v1/signup — age', () => {
  it('refuses ageConfirmed false with 400 age_restricted and writes nothing', async () => {
    const before = counts();
    const email = uniqueEmail('young');
    const response = await postSignup(body({ email, ageConfirmed: false }));
    expectProblem(response, 400, 'age_restricted');
    expect(response.cookies.find((c) => c.name === 'cleverom_session')).toBeUndefined();
    expect(counts()).toEqual(before);
    // The email is still free afterwards.
    expect((await postSignup(body({ email }))).statusCode).toBe(201);
  });

  it('refuses a missing ageConfirmed with 400 validation_failed', async () => {
    const before = counts();
    const { ageConfirmed: _omit, ...rest } = body();
    const problem = expectProblem(await postSignup(rest), 400, 'validation_failed');
    expect(errorFields(problem)).toContain('ageConfirmed');
    expect(counts()).toEqual(before);
  });
});

describe('POST /v1/signup — email taken', () => {
  it.each([
    ['the same email', (e: string) => e],
    ['the email in upper case', (e: string) => e.toUpperCase()],
    ['the email with surrounding spaces', (e: string) => `  ${e}  `.trim()],
  ])('answers 409 conflict for %s and creates no organization', async (_label, variant) => {
    const first = await signup(t.app);
    const before = counts();
    const response = await postSignup(body({ email: variant(first.email), orgName: 'Second Org' }));
    expectProblem(response, 409, 'conflict');
    expect(response.cookies.find((c) => c.name === 'cleverom_session')).toBeUndefined();
    expect(counts()).toEqual(before);
    expect(t.services.database.sqlite.prepare("SELECT COUNT(*) AS n FROM orgs WHERE name = 'Second Org'").get()).toEqual({ n: 0 });
  });

  it('does not change the existing account when the email is taken', async () => {
    const first = await signup(t.app);
    await postSignup(body({ email: first.email, password: 'another perfectly fine password' }));
    const login = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: first.email, password: GOOD_PASSWORD } });
    expect(login.statusCode).toBe(200);
    const other = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: first.email, password: 'another perfectly fine password' } });
    expect(other.statusCode).toBe(401);
  });
});

describe('POST /v1/signup — password policy (NIST SP 800-63B-4 §3.1.1.2)', () => {
  async function refused(password: string): Promise<Record<string, unknown>> {
    const before = counts();
    const problem = expectProblem(await postSignup(body({ password })), 400, 'validation_failed');
    expect(errorFields(problem)).toEqual(['password']);
    expect(counts()).toEqual(before);
    return problem;
  }

  it('refuses 14 characters, naming the password field', async () => {
    const problem = await refused('plum quarry si');
    expect(JSON.stringify(problem)).not.toContain('plum quarry si');
  });

  it('accepts exactly 15 characters with no composition rules (lower-case letters and spaces)', async () => {
    const response = await postSignup(body({ password: 'plum quarry six' }));
    expect(response.statusCode).toBe(201);
  });

  it('counts code points, not UTF-16 units: 14 emoji are too short, 15 are enough', async () => {
    // Each 🦊 is two UTF-16 units; 14 of them are 28 units but 14 characters.
    await refused('🦊🐻🐼🦁🐯🐨🐸🐵🐔🐧🐦🐤🦆🦅');
    const ok = await postSignup(body({ password: '🦊🐻🐼🦁🐯🐨🐸🐵🐔🐧🐦🐤🦆🦅🦉' }));
    expect(ok.statusCode).toBe(201);
  });

  it('accepts 256 code points and refuses 257', async () => {
    const base = 'a long passphrase, ';
    const p256 = base.repeat(20).slice(0, 256);
    const p257 = base.repeat(20).slice(0, 257);
    expect([...p256]).toHaveLength(256);
    await refused(p257);
    const response = await postSignup(body({ password: p256 }));
    expect(response.statusCode).toBe(201);
  });

  it('refuses 257 astral code points (514 UTF-16 units)', async () => {
    await refused('🦊'.repeat(128) + '🐻'.repeat(129));
  });

  it('never truncates: a long password only logs in whole, not by its first 72 or 128 characters', async () => {
    const long = 'the first part is long enough on its own to pass any truncation, '.repeat(3) + 'and the tail matters';
    expect([...long].length).toBeLessThanOrEqual(256);
    const owner = await signup(t.app, { password: long });
    for (const prefix of [long.slice(0, 72), long.slice(0, 128), long.slice(0, -1)]) {
      const response = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: prefix } });
      expect(response.statusCode).toBe(401);
    }
    const whole = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: long } });
    expect(whole.statusCode).toBe(200);
  });

  it.each(['qwertyuiop12345', '1qaz2wsx3edc4rfv', 'passwordpassword', 'PasswordPassword'])(
    'refuses the common password %s from the shipped blocklist',
    async (password) => {
      const problem = await refused(password);
      expect(JSON.stringify(problem)).not.toContain(password);
    },
  );

  it('refuses the email address as password', async () => {
    const email = 'a.very.long.local.part@example.com';
    const before = counts();
    const problem = expectProblem(await postSignup(body({ email, password: email })), 400, 'validation_failed');
    expect(errorFields(problem)).toEqual(['password']);
    expect(counts()).toEqual(before);
  });

  it('refuses a single repeated character', async () => {
    await refused('x'.repeat(20));
  });

  it('normalises Unicode (NFKC): the composed and decomposed forms of a password are the same password', async () => {
    const composed = 'caf\u00e9 cr\u00e8me br\u00fbl\u00e9e ok'; // é, è, û as single code points
    const decomposed = 'cafe\u0301 cre\u0300me bru\u0302le\u0301e ok'; // base letter + combining mark
    expect(composed).not.toBe(decomposed);
    expect(composed.normalize('NFKC')).toBe(decomposed.normalize('NFKC'));
    const owner = await signup(t.app, { password: composed });
    for (const form of [composed, decomposed]) {
      const response = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: form } });
      expect(response.statusCode).toBe(200);
    }
  });

  it('normalises compatibility forms (NFKC): full-width letters sign in as their ASCII form', async () => {
    const fullWidth = 'ｐｌｕｍ ｑｕａｒｒｙ ｓｅｖｅｎ';
    const ascii = 'plum quarry seven';
    expect(fullWidth.normalize('NFKC')).toBe(ascii);
    const owner = await signup(t.app, { password: fullWidth });
    const response = await t.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: ascii } });
    expect(response.statusCode).toBe(200);
  });
});

describe('POST /v1/signup — hostile input', () => {
  it('stores SQL-looking organization and person names literally', async () => {
    const orgName = "Robert'); DROP TABLE users;--";
    const name = "x' OR '1'='1";
    const response = await postSignup(body({ orgName, name }));
    expect(response.statusCode).toBe(201);
    expect(response.json().organization.name).toBe(orgName);
    expect(response.json().user.name).toBe(name);
    const me = await t.app.inject({ method: 'GET', url: '/v1/me', ...asUser(sessionCookie(response)) });
    expect(me.json().organization.name).toBe(orgName);
    expect(me.json().user.name).toBe(name);
    expect(t.services.database.sqlite.prepare('SELECT name FROM orgs').get()).toEqual({ name: orgName });
    expect(counts().users).toBe(1);
  });

  it.each([
    ['orgName of 10 000 characters', { orgName: 'o'.repeat(10_000) }, 'orgName'],
    ['name of 10 000 characters', { name: 'n'.repeat(10_000) }, 'name'],
    ['email of 300 characters', { email: `${'e'.repeat(290)}@example.com` }, 'email'],
    ['password of 5 000 characters', { password: 'p '.repeat(2500) }, 'password'],
    ['blank orgName', { orgName: '   ' }, 'orgName'],
    ['empty name', { name: '' }, 'name'],
    ['not an email', { email: 'not-an-email' }, 'email'],
  ])('refuses %s with 400 validation_failed and writes nothing', async (_label, overrides, field) => {
    const before = counts();
    const problem = expectProblem(await postSignup(body(overrides)), 400, 'validation_failed');
    expect(errorFields(problem)).toContain(field);
    expect(counts()).toEqual(before);
  });

  it.each([
    ['ageConfirmed as a string', { ageConfirmed: 'true' }, 'ageConfirmed'],
    ['ageConfirmed as a number', { ageConfirmed: 1 }, 'ageConfirmed'],
    ['email as a number', { email: 42 }, 'email'],
    ['password as an array', { password: ['correct horse battery staple'] }, 'password'],
    ['orgName as an object', { orgName: { $ne: null } }, 'orgName'],
    ['name as null', { name: null }, 'name'],
  ])('refuses wrong types (%s) with 400 validation_failed and writes nothing', async (_label, overrides, field) => {
    const before = counts();
    const problem = expectProblem(await postSignup(body(overrides)), 400, 'validation_failed');
    expect(errorFields(problem)).toContain(field);
    expect(counts()).toEqual(before);
  });

  it('refuses mass assignment of a plan or role (unknown fields) and writes nothing', async () => {
    const before = counts();
    const problem = expectProblem(await postSignup(body({ plan: 'enterprise', role: 'staff' })), 400, 'validation_failed');
    expect(errorFields(problem)).toEqual(expect.arrayContaining(['plan']));
    expect(counts()).toEqual(before);
  });

  it('refuses a JSON array as body', async () => {
    const before = counts();
    const response = await t.app.inject({ method: 'POST', url: '/v1/signup', headers: { 'content-type': 'application/json' }, payload: '[]' });
    expectProblem(response, 400, 'validation_failed');
    expect(counts()).toEqual(before);
  });

  it('answers malformed JSON with 400 malformed_body and writes nothing', async () => {
    const before = counts();
    const response = await t.app.inject({
      method: 'POST',
      url: '/v1/signup',
      headers: { 'content-type': 'application/json' },
      payload: '{"orgName":"Acme","name":"Ann",',
    });
    const problem = expectProblem(response, 400, 'malformed_body');
    expect(JSON.stringify(problem)).not.toMatch(/SyntaxError|Unexpected|at .*\.js/);
    expect(counts()).toEqual(before);
  });

  it('answers an empty JSON body with 400 malformed_body', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/v1/signup', headers: { 'content-type': 'application/json' }, payload: '' });
    expectProblem(response, 400, 'malformed_body');
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml'])(
    'answers content-type %s with 400 malformed_body and writes nothing',
    async (contentType) => {
      const before = counts();
      const response = await t.app.inject({
        method: 'POST',
        url: '/v1/signup',
        headers: { 'content-type': contentType },
        payload: JSON.stringify(body()),
      });
      expectProblem(response, 400, 'malformed_body');
      expect(counts()).toEqual(before);
    },
  );

  it('answers a body over 64 KiB with 413 payload_too_large and writes nothing', async () => {
    const before = counts();
    const payload = JSON.stringify(body({ orgName: 'a'.repeat(70 * 1024) }));
    expect(Buffer.byteLength(payload)).toBeGreaterThan(64 * 1024);
    const response = await t.app.inject({ method: 'POST', url: '/v1/signup', headers: { 'content-type': 'application/json' }, payload });
    expectProblem(response, 413, 'payload_too_large');
    expect(counts()).toEqual(before);
  });

  it('accepts a body just under the limit up to the schema (then 400, not 413)', async () => {
    const payload = JSON.stringify(body({ orgName: 'a'.repeat(60 * 1024) }));
    expect(Buffer.byteLength(payload)).toBeLessThan(64 * 1024);
    const response = await t.app.inject({ method: 'POST', url: '/v1/signup', headers: { 'content-type': 'application/json' }, payload });
    expectProblem(response, 400, 'validation_failed');
  });

  it('refuses a sign-up posted from a foreign origin (login CSRF) and writes nothing', async () => {
    const before = counts();
    const response = await t.app.inject({ method: 'POST', url: '/v1/signup', headers: { origin: 'https://evil.example' }, payload: body() });
    expectProblem(response, 403, 'csrf_failed');
    expect(counts()).toEqual(before);
    const ok = await t.app.inject({ method: 'POST', url: '/v1/signup', headers: { origin: PUBLIC_ORIGIN }, payload: body() });
    expect(ok.statusCode).toBe(201);
  });
});
