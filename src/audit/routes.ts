import { Readable } from 'node:stream';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../app.js';
import { userOf } from '../http/policy.js';
import { Id, OrgIdParams } from '../http/schemas.js';
import type { AuditEvent } from './events.js';
import type { AuditFilter } from './sqlite-audit.js';

const Cursor = Type.String({ pattern: '^[0-9]{1,15}$' });
/** Query strings are not type-coerced (bodies must not be either): numbers arrive as digits. */
const Limit = Type.String({ pattern: '^(1000|[1-9][0-9]{0,2})$' });
const IsoTime = Type.String({ format: 'date-time' });

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
      const { user } = userOf(request);
      // Reading the audit log is itself a staff access: recorded in the transaction of the answer.
      const events = services.database.transaction(() => {
        const found = services.audit.list(filter);
        services.audit.append({
          action: 'staff.audit.searched',
          actor: { type: 'staff', id: user.id },
          orgId: q.orgId ?? null,
          data: { filters: { orgId: q.orgId ?? null, actorId: q.actorId ?? null, action: q.action ?? null, from: q.from ?? null, to: q.to ?? null }, results: found.length },
          pii: { userId: user.id, ...request.requestContext },
        });
        return found;
      });
      return page(events, limit);
    },
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
      return page(services.audit.list({ ...base, afterSeq: q.cursor ? Number(q.cursor) : 0, limit }), limit);
    },
  );
}
