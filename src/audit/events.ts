/**
 * Typed audit events. `data` holds only non-personal values (ids, codes,
 * reasons); personal details (IP, user agent, email) go in `pii`, which is
 * stored beside the chain and committed to by a salted hash, so erasure can
 * delete it without breaking the chain.
 */
export type AuditAction =
  | 'user.signup'
  | 'auth.login.succeeded'
  | 'auth.login.failed'
  | 'auth.login.locked'
  | 'auth.logout'
  | 'auth.reauthenticated'
  | 'session.revoked'
  | 'session.revoked_others'
  | 'password.changed'
  | 'password.reset_requested'
  | 'password.reset_completed'
  | 'org.created'
  | 'org.updated'
  | 'org.plan_changed'
  | 'member.role_changed'
  | 'member.removed'
  | 'invitation.created'
  | 'invitation.accepted'
  | 'service_token.created'
  | (string & { readonly __auditAction?: never });

export type ActorType = 'user' | 'staff' | 'service' | 'system' | 'anonymous';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface AuditActor {
  type: ActorType;
  id: string | null;
}

export interface AuditPii {
  /** The person the personal data is about; erasure deletes by this id. */
  userId: string | null;
  ip?: string | null;
  userAgent?: string | null;
  email?: string | null;
}

export interface AuditEventInput {
  action: AuditAction;
  actor: AuditActor;
  orgId?: string | null;
  subjectId?: string | null;
  data?: { [key: string]: JsonValue };
  pii?: AuditPii;
}

export interface AuditEvent {
  seq: number;
  id: string;
  at: string;
  action: string;
  actorType: ActorType;
  actorId: string | null;
  orgId: string | null;
  subjectId: string | null;
  data: { [key: string]: JsonValue };
  piiCommitment: string | null;
  prevHash: string;
  hash: string;
  /** How `hash` is computed (chain.ts): `keyed` for every event written since the chain was keyed. */
  format: 'legacy' | 'keyed';
}

/** Request context carried into events: personal, so it lands in `pii`. */
export interface RequestContext {
  ip: string | null;
  userAgent: string | null;
}

export const SYSTEM_ACTOR: AuditActor = { type: 'system', id: null };
export const ANONYMOUS_ACTOR: AuditActor = { type: 'anonymous', id: null };
