import { Type } from 'typebox';

/** Shared request/response schemas; they also produce the OpenAPI document. */
export const Email = Type.String({ format: 'email', minLength: 3, maxLength: 254 });
/** Passwords are checked by the policy after normalisation; the schema only bounds the size. */
export const Password = Type.String({ minLength: 1, maxLength: 1024 });
export const PersonName = Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' });
export const OrgName = Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' });
export const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });
export const OpaqueToken = Type.String({ minLength: 16, maxLength: 256, pattern: '^[A-Za-z0-9_-]+$' });
export const Role = Type.Union([Type.Literal('owner'), Type.Literal('admin'), Type.Literal('member')]);

export const UserView = Type.Object({
  id: Type.String(),
  email: Type.String(),
  name: Type.String(),
  phone: Type.Union([Type.String(), Type.Null()]),
  orgId: Type.Union([Type.String(), Type.Null()]),
  role: Type.Union([Role, Type.Null()]),
  createdAt: Type.String(),
});

export const SessionSummary = Type.Object({
  id: Type.String(),
  aal: Type.Integer(),
  authMethod: Type.String(),
  createdAt: Type.String(),
  expiresAt: Type.String(),
});

export const OrgSettingsView = Type.Object({
  requireMfa: Type.Boolean(),
  enforceSso: Type.Boolean(),
  requireCustomerApproval: Type.Boolean(),
  passwordMinLength: Type.Integer(),
});

export const OrgViewSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  slug: Type.String(),
  plan: Type.String(),
  features: Type.Array(Type.String()),
  settings: OrgSettingsView,
  createdAt: Type.String(),
});

export const MemberViewSchema = Type.Object({
  id: Type.String(),
  email: Type.String(),
  name: Type.String(),
  role: Role,
  status: Type.String(),
  createdAt: Type.String(),
});

export const OrgIdParams = Type.Object({ orgId: Id });
export const MemberParams = Type.Object({ orgId: Id, userId: Id });
