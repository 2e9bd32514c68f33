import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createServices, type Services } from './app.js';
import { parseCheckpoint } from './audit/checkpoint.js';
import { SYSTEM_ACTOR } from './audit/events.js';
import { normalizePassword, checkPassword } from './auth/password/policy.js';
import { ConfigError } from './config/load-config.js';
import { resolveProcessConfig } from './config/resolve.js';
import { isPlan } from './plans/plans.js';
import { resealAll } from './secrets/reseal.js';
import { AppError } from './platform/errors.js';
import { normalizeEmail } from './users/user.js';

/**
 * `npm run cli -- <command>`: operator verbs over the same services as the
 * HTTP API. Every verb prints JSON on stdout; failures exit non-zero.
 */
type Verb = (services: Services, args: string[]) => Promise<{ output: unknown; exitCode?: number }>;

const VERBS: Record<string, { usage: string; run: Verb }> = {
  migrate: {
    usage: 'migrate',
    // createServices applies the migrations.
    run: async () => ({ output: { ok: true, migrated: true } }),
  },
  'org:create': {
    usage: 'org:create --name N --plan free|pro|enterprise --owner-email E [--owner-name N] [--owner-password P]',
    run: async (services, args) => {
      const { values } = parseArgs({
        args,
        options: {
          name: { type: 'string' },
          plan: { type: 'string', default: 'free' },
          'owner-email': { type: 'string' },
          'owner-name': { type: 'string' },
          'owner-password': { type: 'string' },
        },
      });
      const name = required(values.name, '--name');
      const plan = required(values.plan, '--plan');
      if (!isPlan(plan)) throw usage('--plan must be free, pro or enterprise');
      const email = normalizeEmail(required(values['owner-email'], '--owner-email'));
      let passwordHash: string | null = null;
      if (values['owner-password'] !== undefined) {
        const password = normalizePassword(values['owner-password']);
        // Context words (NIST SP 800-63B-4 §3.1.1.2): the owner's email and name, the organization's name.
        const problem = checkPassword({ password, field: '--owner-password', context: [email, name, ...(values['owner-name'] === undefined ? [] : [values['owner-name']])] });
        if (problem) throw usage(`${problem.field} ${problem.message}`);
        passwordHash = await services.hasher.hash(password);
      }
      const result = await services.orgs.createOrgWithOwner({
        orgName: name,
        plan,
        owner: { name: values['owner-name'] ?? email.split('@')[0] ?? email, email, passwordHash, ageConfirmed: false },
        actor: SYSTEM_ACTOR,
        context: { ip: null, userAgent: 'cli' },
        withSession: false,
      });
      return { output: { id: result.org.id, ownerId: result.user.id } };
    },
  },
  'org:set-plan': {
    usage: 'org:set-plan --org ID --plan free|pro|enterprise',
    run: async (services, args) => {
      const { values } = parseArgs({ args, options: { org: { type: 'string' }, plan: { type: 'string' } } });
      const plan = required(values.plan, '--plan');
      if (!isPlan(plan)) throw usage('--plan must be free, pro or enterprise');
      const org = await services.orgs.setPlan(required(values.org, '--org'), plan, SYSTEM_ACTOR);
      return { output: { id: org.id, plan: org.plan, features: services.plans.featuresOf(org.plan) } };
    },
  },
  'staff:create': {
    usage: 'staff:create --email E --name N --role support|engineer|security_admin --nda-signed YYYY-MM-DD [--password P]',
    run: async (services, args) => {
      const { values } = parseArgs({
        args,
        options: { email: { type: 'string' }, name: { type: 'string' }, role: { type: 'string' }, 'nda-signed': { type: 'string' }, password: { type: 'string' } },
      });
      const created = await services.staff.createStaff({
        email: required(values.email, '--email'),
        name: required(values.name, '--name'),
        role: required(values.role, '--role'),
        // Without --nda-signed the principal exists but can never hold a grant.
        ndaSignedAt: values['nda-signed'] ?? null,
        password: values.password ?? null,
      });
      return { output: created };
    },
  },
  'domain:verify': {
    usage: 'domain:verify --org ID --domain D [--reason TEXT]',
    // Operator override of DNS verification, audited as a manual verification by the system actor.
    run: async (services, args) => {
      const { values } = parseArgs({ args, options: { org: { type: 'string' }, domain: { type: 'string' }, reason: { type: 'string' } } });
      const orgId = required(values.org, '--org');
      await services.orgs.get(orgId);
      const view = await services.domains.verifyManually({
        orgId,
        domain: required(values.domain, '--domain'),
        actor: SYSTEM_ACTOR,
        reason: values.reason ?? 'cli domain:verify',
        context: { ip: null, userAgent: 'cli' },
      });
      return { output: { ok: true, orgId, ...view } };
    },
  },
  'service-token:create': {
    usage: 'service-token:create --name N --scopes plans:write,authz:check',
    run: async (services, args) => {
      const { values } = parseArgs({ args, options: { name: { type: 'string' }, scopes: { type: 'string' } } });
      const scopes = required(values.scopes, '--scopes').split(',').map((s) => s.trim()).filter(Boolean);
      const created = await services.serviceTokens.create(required(values.name, '--name'), scopes, SYSTEM_ACTOR);
      return { output: created };
    },
  },
  'secrets:reseal': {
    usage: 'secrets:reseal',
    // Run after putting a new key first in SECRETS_KEY; then the old key can be dropped.
    run: async (services) => ({ output: { ok: true, primaryKeyId: services.secretBox.primaryKeyId, resealed: resealAll(services.database, services.audit, services.secretBox) } }),
  },
  'audit:verify': {
    usage: 'audit:verify [--checkpoint FILE]',
    // With a checkpoint: also that the chain still has the signed hash at its seq (not truncated, not rewritten).
    run: async (services, args) => {
      const { values } = parseArgs({ args, options: { checkpoint: { type: 'string' } } });
      if (values.checkpoint === undefined) {
        const result = services.audit.verify();
        return result.ok
          ? { output: { ok: true, events: result.events, ...legacyNote(result.legacyEvents) } }
          : { output: { ok: false, events: result.events, brokenSeq: result.brokenSeq, reason: result.reason }, exitCode: 1 };
      }
      const checkpoint = readCheckpointFile(values.checkpoint);
      if (!checkpoint.ok) return { output: { ok: false, error: 'checkpoint_invalid', reason: checkpoint.reason }, exitCode: 1 };
      const result = services.auditCheckpoints.verifyAgainst(checkpoint.checkpoint);
      if ('error' in result) return { output: result, exitCode: 1 };
      return result.ok
        ? { output: { ok: true, events: result.events, checkpointSeq: result.checkpointSeq, ...legacyNote(result.legacyEvents) } }
        : { output: { ok: false, events: result.events, brokenSeq: result.brokenSeq, reason: result.reason, checkpointSeq: result.checkpointSeq }, exitCode: 1 };
    },
  },
  'audit:checkpoint': {
    usage: 'audit:checkpoint',
    // Verifies the chain up to its head, signs the head (Ed25519), writes it to AUDIT_CHECKPOINT_DIR and prints it.
    run: async (services) => {
      const outcome = services.auditCheckpoints.checkpointHead();
      return outcome.ok
        ? { output: outcome.checkpoint }
        : { output: { ok: false, events: outcome.events, brokenSeq: outcome.brokenSeq, reason: outcome.reason }, exitCode: 1 };
    },
  },
};

/** `legacyEvents` is printed only when the chain has a legacy (unkeyed) prefix, protected by checkpoints alone. */
function legacyNote(legacyEvents: number | undefined): { legacyEvents?: number } {
  return legacyEvents ? { legacyEvents } : {};
}

function readCheckpointFile(file: string): ReturnType<typeof parseCheckpoint> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw usage(`--checkpoint ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return parseCheckpoint(JSON.parse(text));
  } catch {
    return { ok: false, reason: 'the checkpoint file is not JSON' };
  }
}

class UsageError extends Error {}
function usage(message: string): UsageError {
  return new UsageError(message);
}
function required(value: string | undefined, flag: string): string {
  if (value === undefined || value.trim() === '') throw usage(`${flag} is required`);
  return value;
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export async function runCli(argv: string[]): Promise<number> {
  const [verbName, ...args] = argv;
  const verb = verbName === undefined ? undefined : VERBS[verbName];
  if (!verb) {
    print({ ok: false, error: 'unknown_command', usage: Object.values(VERBS).map((v) => v.usage) });
    return 2;
  }
  let services: Services | undefined;
  try {
    const { config, warnings } = resolveProcessConfig();
    for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`);
    services = createServices(config);
    const { output, exitCode } = await verb.run(services, args);
    print(output);
    return exitCode ?? 0;
  } catch (error) {
    if (error instanceof UsageError) {
      print({ ok: false, error: 'usage', message: error.message, usage: verb.usage });
      return 2;
    }
    if (error instanceof ConfigError) {
      print({ ok: false, error: 'config', problems: error.problems });
      return 2;
    }
    if (error instanceof AppError) {
      print({ ok: false, error: error.code, message: error.publicDetail ?? error.title, ...error.extra });
      return 1;
    }
    if (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
      print({ ok: false, error: 'usage', message: error.message, usage: verb.usage });
      return 2;
    }
    print({ ok: false, error: 'internal', message: error instanceof Error ? error.message : String(error) });
    return 1;
  } finally {
    services?.database.close();
  }
}

runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(1);
  },
);
