import { developmentSecretsKey } from '../platform/dev-key.js';
import { ConfigError, loadConfig, parseSecretsKey, readEnvironment, type Config } from './load-config.js';

/**
 * Load the configuration for a process (server or CLI): environment + `.env`,
 * validated, with a generated development key when none is configured.
 */
export function resolveProcessConfig(cwd: string = process.cwd()): { config: Readonly<Config>; warnings: string[] } {
  const config = loadConfig(readEnvironment(cwd), cwd);
  const warnings: string[] = [];
  if (config.dangerouslyAllowLoopbackIdp) {
    warnings.push('DANGEROUSLY_ALLOW_LOOPBACK_IDP=true: identity providers on http://127.0.0.1/localhost are accepted. Tests and local trials only.');
  }
  if (config.secretsKeys !== null) return { config, warnings };
  const dev = developmentSecretsKey(config.dataDir);
  const keys = parseSecretsKey(dev.value);
  if (typeof keys === 'string') throw new ConfigError([`the development key in ${dev.file} ${keys}`]);
  warnings.push(
    `SECRETS_KEY is not set: using the development key ${dev.created ? 'generated into' : 'from'} ${dev.file}. Never use it in production.`,
  );
  return { config: Object.freeze({ ...config, secretsKeys: keys }), warnings };
}
