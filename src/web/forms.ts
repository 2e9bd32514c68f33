import type { FastifyRequest } from 'fastify';
import { type TProperties, Type } from 'typebox';
import { AppError, type FieldError } from '../platform/errors.js';

/**
 * Form handling for the pages: urlencoded bodies validated with the same
 * TypeBox schemas as the API (`attachValidation`, so a wrong field becomes a
 * message next to that field instead of a problem+json answer), and service
 * refusals (AppError) turned into re-rendered forms.
 */

/** The hidden CSRF field every form carries (@fastify/csrf-protection reads `_csrf`). */
export const CSRF_FIELD = '_csrf';

/** A urlencoded form body: the given fields plus the CSRF token, nothing else. */
export function formBody<T extends TProperties>(properties: T) {
  return Type.Object({ ...properties, [CSRF_FIELD]: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false });
}

/** An HTML checkbox: present (with this value) when ticked, absent otherwise. */
export const Checkbox = Type.Optional(Type.Literal('yes'));

/** What a re-rendered form shows: a summary, messages next to fields and the values typed so far. */
export interface FormFailure {
  /** Which form on the page failed (pages can hold several). */
  form: string;
  status: number;
  /** Sentence for the summary at the top of the form (role=alert). */
  message: string;
  /** field name → message shown next to that field. */
  fields: Record<string, string>;
  /** Values to put back into the fields (never secrets). */
  values: Record<string, string>;
}

/** The labels of form fields, so the error summary can say which field each message is about. */
const FIELD_LABELS: Record<string, string> = {
  orgName: 'Organization name',
  name: 'Name',
  email: 'Email',
  password: 'Password',
  currentPassword: 'Current password',
  newPassword: 'New password',
  ageConfirmed: 'I am 16 or older',
  code: 'Authentication code',
  recoveryCode: 'Recovery code',
  token: 'Link',
  role: 'Role',
  phone: 'Phone',
  issuer: 'Issuer URL',
  clientId: 'Client ID',
  clientSecret: 'Client secret',
  domains: 'Email domains',
  idpMetadataXml: 'IdP metadata',
  idpEntityId: 'IdP entity ID',
  idpSsoUrl: 'IdP single sign-on URL',
  idpCertificate: 'IdP signing certificate',
  domain: 'Domain',
  orgId: 'Organization ID',
  scope: 'Access',
  reason: 'Reason',
  ticket: 'Ticket',
  durationMinutes: 'Duration in minutes',
  actorId: 'Actor ID',
  action: 'Action',
  from: 'From',
  to: 'To',
  understood: 'I understand my account cannot be restored',
};

/** Summary lines ("Email: Enter an email address…") linking to their fields. */
export function summaryOf(failure: FormFailure): { field: string; text: string }[] {
  return Object.entries(failure.fields).map(([field, message]) => {
    const label = FIELD_LABELS[field];
    return { field, text: label ? `${label}: ${message}` : message };
  });
}

/** Fields never echoed back into a re-rendered form. */
const SECRET_FIELDS = new Set([CSRF_FIELD, 'password', 'currentPassword', 'newPassword', 'code', 'recoveryCode', 'clientSecret', 'token', 'secret']);

/**
 * Fields whose whole value is put back (pasted documents: a cut-off copy
 * would be worse than none). Their schemas bound their length.
 */
const LONG_FIELDS = new Set(['idpMetadataXml', 'idpCertificate']);

function echo(body: unknown): Record<string, string> {
  const values: Record<string, string> = {};
  if (body && typeof body === 'object') {
    for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
      if (!SECRET_FIELDS.has(key) && typeof value === 'string') values[key] = LONG_FIELDS.has(key) ? value.slice(0, 200_000) : value.slice(0, 2048);
    }
  }
  return values;
}

function sentence(message: string): string {
  const trimmed = message.trim();
  if (trimmed === '') return trimmed;
  const first = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

/** Codes a form shows to the person; everything else goes to the page error handler. */
const GATE_CODES = new Set(['unauthenticated', 'reauthentication_required', 'csrf_failed', 'rate_limited', 'internal']);

/**
 * The failure to re-render for `error`, or null when the error is not the
 * form's to show (gates, rate limits, bugs): rethrow those.
 */
export function formFailure(error: unknown, form: string, body: unknown): FormFailure | null {
  if (!(error instanceof AppError) || GATE_CODES.has(error.code) || error.status >= 500) return null;
  const fields: Record<string, string> = {};
  let message: string;
  switch (error.code) {
    case 'validation_failed': {
      const errors = (error.extra.errors as FieldError[] | undefined) ?? [];
      // `domains.2` is about the one `domains` field of the form.
      for (const e of errors) fields[e.field.replace(/\.\d+$/, '')] ??= sentence(e.message);
      message = error.publicDetail ?? 'Please correct the fields marked below.';
      break;
    }
    case 'age_restricted':
      fields.ageConfirmed = 'You must be 16 or older to use this service.';
      message = fields.ageConfirmed;
      break;
    case 'account_locked': {
      const seconds = typeof error.extra.retryAfter === 'number' ? error.extra.retryAfter : null;
      message = seconds === null ? error.title : `Too many failed attempts. Try again in ${describeSeconds(seconds)}.`;
      break;
    }
    case 'plan_required':
      message = planMessage(error);
      break;
    default:
      message = error.publicDetail ?? error.title;
  }
  return { form, status: error.status, message, fields, values: echo(body) };
}

/** "This needs the Enterprise plan." from a `plan_required` error. */
export function planMessage(error: AppError): string {
  const plan = typeof error.extra.requiredPlan === 'string' ? error.extra.requiredPlan : 'enterprise';
  return `This needs the ${planName(plan)} plan.`;
}

export function planName(plan: string): string {
  return plan.charAt(0).toUpperCase() + plan.slice(1);
}

export function describeSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}

interface AjvIssue {
  keyword?: string;
  instancePath?: string;
  params?: Record<string, unknown>;
  message?: string;
}

/**
 * Schema errors of a form body as field messages people can act on
 * (ajv's own wording is for developers).
 */
export function validationFailure(request: FastifyRequest, form: string): FormFailure | null {
  const error = request.validationError as (Error & { validation?: AjvIssue[] }) | undefined;
  if (!error) return null;
  const body = (request.body ?? {}) as Record<string, unknown>;
  const fields: Record<string, string> = {};
  for (const issue of error.validation ?? []) {
    const path = (issue.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
    const missing = typeof issue.params?.missingProperty === 'string' ? issue.params.missingProperty : undefined;
    const extra = typeof issue.params?.additionalProperty === 'string' ? issue.params.additionalProperty : undefined;
    const field = missing ?? extra ?? (path === '' ? 'form' : path);
    const value = body[field];
    let text: string;
    if (missing !== undefined || value === '' || (typeof value === 'string' && value.trim() === '')) text = 'This field is required.';
    else if (extra !== undefined) text = 'This field is not expected here.';
    else if (issue.keyword === 'format' && issue.params?.format === 'email') text = 'Enter an email address such as name@example.com.';
    else if (issue.keyword === 'maxLength' || issue.keyword === 'maxItems') text = 'This is too long.';
    else if (issue.keyword === 'minLength') text = 'This is too short.';
    else text = 'This value is not valid.';
    fields[field] ??= text;
  }
  return { form, status: 400, message: 'Please correct the fields marked below.', fields, values: echo(body) };
}
