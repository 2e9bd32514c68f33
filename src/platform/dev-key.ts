import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Outside production a missing `SECRETS_KEY` is generated once into the data
 * folder (mode 0600) and reused; production refuses to start without one.
 */
export function developmentSecretsKey(dataDir: string): { value: string; file: string; created: boolean } {
  const file = join(dataDir, 'secrets.key');
  if (existsSync(file)) return { value: readFileSync(file, 'utf8').trim(), file, created: false };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const value = `dev:${randomBytes(32).toString('base64')}`;
  writeFileSync(file, `${value}\n`, { mode: 0o600, flag: 'wx' });
  return { value, file, created: true };
}
