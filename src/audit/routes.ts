import { Readable } from 'node:stream';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../app.js';
import { userOf } from '../http/policy.js';
import { AppError } from '../platform/errors.js';
import { Id, OrgIdParams } from '../http/schemas.js';
import type { AuditEvent } from './events.js';
import type { AuditFilter } from './sqlite-audit.js';

const Cursor = Type.String({ pattern: '^[0-9]{1,15}$' });
/** Query strings are not type-coerced (bodies must not be either): numbers arrive as digits. */
const Limit = Type.String({ pattern: '^(1000|[1-9][0-9]{0,2})$' });
const IsoTime = Type.String({ format: 'date-time' });
/** A sequence number ≥ 1, as digits. */
const Seq = Type.String({ pattern: '^[1-9][0-9]{0,14}$' });

const EventView = Type.Object({
  seq: Type.Integer(),
  id: Type.String(),
  at: Type.String(),
  action: Type.String(),
  actorType: Type.String(),
  actorId: Type.Union([Type.String(), Type.Null()]),
  orgId: Type.Union([Type.String(), Type.Null()]),
  subjectId: Type.Union([Type.String(), Type.Null()]),
  data: Type.Record(Type.String(), Type.Unknown()),
  piiCommitment: Type.Union([Type.String(), Type.Null()]),
  prevHash: Type.String(),
  hash: Type.String(),
  format: Type.Union([Type.Literal('legacy'), Type.Literal('keyed')]),
});

/** Staff accesses shown to the customer (access transparency). */
export const STAFF_ACCESS_ACTIONS = ['staff.access.read', 'staff.access.write', 'staff.access.refused', 'staff.authz.allowed', 'staff.authz.denied'] as const;

function page(events: AuditEvent[], limit: number): { events: AuditEvent[]; nextCursor: string | null } {
  const last = events.at(-1);
  return { events, nextCursor: events.length === limit && last ? String(last.seq) : null };
}

export function auditRoutes(scope: FastifyInstance, services: Services): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    '/v1/staff/audit',
    {
      config: { auth: 'user', staff: 'security_admin' },
      schema: {
        tags: ['audit'],
        summary: 'Search the audit log (security_admin)',
        querystring: Type.Object(
          {
            orgId: Type.Optional(Id),
            actorId: Type.Optional(Id),
            action: Type.Optional(Type.String({ maxLength: 100 })),
            from: Type.Optional(IsoTime),
            to: Type.Optional(IsoTime),
            cursor: Type.Optional(Cursor),
            limit: Type.Optional(Limit),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ events: Type.Array(EventView), nextCursor: Type.Union([Type.String(), Type.Null()]) }) },
      },
    },
    async (request) => {
      const q = request.query;
      const limit = Number(q.limit ?? 100);
      const filter: AuditFilter = {
        ...(q.orgId ? { orgId: q.orgId } : {}),
        ...(q.actorId ? { actorId: q.actorId } : {}),
        ...(q.action ? { action: q.action } : {}),
        ...(q.from ? { from: new Date(q.from) } : {}),
        ...(q.to ? { to: new Date(q.to) } : {}),
        afterSeq: q.cursor ? Number(q.cursor) : 0,
        limit,
      };
      if (!request.staffMember) throw new AppError('forbidden');
      // Reading the audit log is itself a staff access: the service records it (audit-service.ts).
      const events = await services.auditService.searchAsStaff({ user: userOf(request).user, staff: request.staffMember }, filter, 'api', request.requestContext);
      return page(events, limit);
    },
  );

  // Public: the keys that sign audit checkpoints, for anyone checking one (docs/api.md).
  app.get(
    '/v1/audit/checkpoint-keys',
    {
      schema: {
        tags: ['audit'],
        summary: 'Public keys (Ed25519 JWKs) of the audit checkpoint signatures',
        response: {
          200: Type.Object({
            keys: Type.Array(
              Type.Object({ kty: Type.Literal('OKP'), crv: Type.Literal('Ed25519'), x: Type.String(), kid: Type.String(), alg: Type.Literal('EdDSA'), use: Type.Literal('sig') }),
            ),
          }),
        },
      },
    },
    async () => ({ keys: services.auditService.checkpointKeys() }),
  );

  app.get(
    '/v1/orgs/:orgId/access-log',
    {
      config: { auth: 'user', role: 'admin', feature: 'access_transparency' },
      schema: {
        tags: ['audit'],
        summary: "Cleverom staff accesses to your organization's data",
        params: OrgIdParams,
        querystring: Type.Object({ cursor: Type.Optional(Cursor), limit: Type.Optional(Limit) }, { additionalProperties: false }),
      },
    },
    async (request) => {
      const limit = Number(request.query.limit ?? 100);
      const events = services.audit.list({
        orgId: request.params.orgId,
        actions: STAFF_ACCESS_ACTIONS,
        afterSeq: request.query.cursor ? Number(request.query.cursor) : 0,
        limit,
      });
      const entries = await services.staff.describeAccesses(events);
      const last = events.at(-1);
      return { entries, nextCursor: events.length === limit && last ? String(last.seq) : null };
    },
  );

  app.get(
    '/v1/orgs/:orgId/audit',
    {
      config: { auth: 'user', role: 'admin', feature: 'audit_export' },
      schema: {
        tags: ['audit'],
        summary: "Your organization's audit events (JSON pages, or ?format=ndjson to stream all)",
        params: OrgIdParams,
        querystring: Type.Object(
          {
            format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('ndjson')])),
            action: Type.Optional(Type.String({ maxLength: 100 })),
            from: Type.Optional(IsoTime),
            to: Type.Optional(IsoTime),
            cursor: Type.Optional(Cursor),
            limit: Type.Optional(Limit),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const q = request.query;
      const base: AuditFilter = {
        orgId: request.params.orgId,
        ...(q.action ? { action: q.action } : {}),
        ...(q.from ? { from: new Date(q.from) } : {}),
        ...(q.to ? { to: new Date(q.to) } : {}),
      };
      if (q.format === 'ndjson') {
        const audit = services.audit;
        let afterSeq = q.cursor ? Number(q.cursor) : 0;
        // Stream page by page so a large export never sits in memory whole.
        async function* lines(): AsyncGenerator<string> {
          for (;;) {
            const batch = audit.list({ ...base, afterSeq, limit: 500 });
            for (const event of batch) yield `${JSON.stringify(event)}\n`;
            const last = batch.at(-1);
            if (!last || batch.length < 500) return;
            afterSeq = last.seq;
          }
        }
        return reply.type('application/x-ndjson').send(Readable.from(lines()));
      }
      const limit = Number(q.limit ?? 100);
      // The newest signed checkpoint, to keep: a later proof must extend it (docs/api.md).
      return { ...page(services.audit.list({ ...base, afterSeq: q.cursor ? Number(q.cursor) : 0, limit }), limit), checkpoint: services.auditService.latestCheckpoint() };
    },
  );

  app.get(
    '/v1/orgs/:orgId/audit/proof',
    {
      config: { auth: 'user', role: 'admin', feature: 'audit_export' },
      schema: {
        tags: ['audit'],
        summary: 'A signed, verifiable stretch of the audit chain: your events in full, others as digests',
        params: OrgIdParams,
        querystring: Type.Object({ fromSeq: Type.Optional(Seq), toSeq: Type.Optional(Seq) }, { additionalProperties: false }),
      },
    },
    async (request) => {
      const q = request.query;
      return services.auditService.orgProof(request.params.orgId, {
        fromSeq: q.fromSeq === undefined ? undefined : Number(q.fromSeq),
        toSeq: q.toSeq === undefined ? undefined : Number(q.toSeq),
      });
    },
  );
}
