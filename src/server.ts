import { buildApp } from './app.js';
import { ConfigError } from './config/load-config.js';
import { resolveProcessConfig } from './config/resolve.js';

/** Load config, migrate (inside buildApp), listen, and shut down gracefully. */
async function main(): Promise<void> {
  let resolved;
  try {
    resolved = resolveProcessConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const { config, warnings } = resolved;
  const { app } = await buildApp(config);
  for (const warning of warnings) app.log.warn(warning);

  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        app.log.error({ err: error }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  await app.listen({ port: config.port, host: config.host });
}

main().catch((error: unknown) => {
  process.stderr.write(`Failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
