import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resealAll } from '../../src/secrets/reseal.js';
import { ManualClock } from '../../src/platform/clock.js';
import { GOOD_PASSWORD, buildTestApp, signup } from '../helpers/app.js';
import { enrolTotp, makeEnterprise, pendingCookie, totpCodeAt } from '../helpers/totp.js';

/** SECRETS_KEY rotation: put a new key first, re-seal, drop the old key — nothing lost. */
const dir = mkdtempSync(join(tmpdir(), 'cleverom-rotation-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const DATABASE_URL = `file:${join(dir, 'rotation.db')}`;
const oldKey = `old:${randomBytes(32).toString('base64')}`;
const newKey = `new:${randomBytes(32).toString('base64')}`;

describe('secrets:reseal', () => {
  it('re-seals TOTP secrets under the new primary key so the old key can be removed', async () => {
    const clock = new ManualClock();
    const first = await buildTestApp({ clock, env: { DATABASE_URL, SECRETS_KEY: oldKey } });
    const owner = await signup(first.app);
    await makeEnterprise(first, owner.orgId);
    const { secret } = await enrolTotp(first, owner);
    await first.close();

    const both = await buildTestApp({ clock, env: { DATABASE_URL, SECRETS_KEY: `${newKey},${oldKey}` } });
    const sealedBefore = (both.services.database.sqlite.prepare('SELECT secret_sealed FROM totp_factors').get() as { secret_sealed: string }).secret_sealed;
    expect(sealedBefore.startsWith('v1.old.')).toBe(true);
    expect(resealAll(both.services.database, both.services.audit, both.services.secretBox)).toMatchObject({ totpSecrets: 1 });
    expect(resealAll(both.services.database, both.services.audit, both.services.secretBox)).toMatchObject({ totpSecrets: 0 });
    const sealedAfter = (both.services.database.sqlite.prepare('SELECT secret_sealed FROM totp_factors').get() as { secret_sealed: string }).secret_sealed;
    expect(sealedAfter.startsWith('v1.new.')).toBe(true);
    expect(both.services.audit.verify().ok).toBe(true);
    await both.close();

    const onlyNew = await buildTestApp({ clock, env: { DATABASE_URL, SECRETS_KEY: newKey } });
    clock.advance(60_000);
    const password = await onlyNew.app.inject({ method: 'POST', url: '/v1/login', payload: { email: owner.email, password: GOOD_PASSWORD } });
    const mfa = await onlyNew.app.inject({
      method: 'POST',
      url: '/v1/login/mfa',
      cookies: { cleverom_mfa: pendingCookie(password) },
      payload: { code: await totpCodeAt(secret, clock.now()) },
    });
    expect(mfa.statusCode).toBe(200);
    await onlyNew.close();
  });
});
