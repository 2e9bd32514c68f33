/**
 * One error type for the whole service. `code` is the stable wire code from
 * API.md; `detail` is logged, never sent (DESIGN.md rule 3).
 */
export const ERROR_STATUS = {
  validation_failed: 400,
  malformed_body: 400,
  payload_too_large: 413,
  unauthenticated: 401,
  invalid_credentials: 401,
  invalid_code: 401,
  mfa_required: 401,
  reauthentication_required: 401,
  sso_required: 403,
  plan_required: 403,
  forbidden: 403,
  access_grant_required: 403,
  csrf_failed: 403,
  account_locked: 423,
  account_restricted: 403,
  age_restricted: 400,
  not_found: 404,
  conflict: 409,
  rate_limited: 429,
  sso_failed: 400,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

const DEFAULT_TITLES: Record<ErrorCode, string> = {
  validation_failed: 'The request does not match the schema.',
  malformed_body: 'The request body could not be parsed.',
  payload_too_large: 'The request body is too large.',
  unauthenticated: 'Authentication is required.',
  invalid_credentials: 'The email or password is incorrect.',
  invalid_code: 'The code is invalid or has expired.',
  mfa_required: 'A second factor is required.',
  reauthentication_required: 'Please confirm your identity again.',
  sso_required: 'Your organization requires single sign-on.',
  plan_required: "This feature is not included in the organization's plan.",
  forbidden: 'You are not allowed to do this.',
  access_grant_required: 'An active access grant is required.',
  csrf_failed: 'The request origin is not allowed.',
  account_locked: 'Too many failed attempts. Try again later.',
  account_restricted: 'This account is restricted.',
  age_restricted: 'You must be 16 or older to use this service.',
  not_found: 'The resource was not found.',
  conflict: 'The request conflicts with the current state.',
  rate_limited: 'Too many requests.',
  sso_failed: 'Single sign-on failed.',
  internal: 'An unexpected error occurred.',
};

export interface FieldError {
  field: string;
  message: string;
}

export interface AppErrorOptions {
  /** Public, safe-to-show sentence (RFC 9457 `detail`). */
  publicDetail?: string;
  /** Extra members sent with the problem (e.g. `retryAfter`, `feature`). */
  extra?: Record<string, unknown>;
  /** Response headers to set (e.g. `Retry-After`). */
  headers?: Record<string, string>;
  /** Internal context: logged, never sent. */
  detail?: Record<string, unknown>;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly publicDetail: string | undefined;
  readonly extra: Readonly<Record<string, unknown>>;
  readonly headers: Readonly<Record<string, string>>;
  readonly detail: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, options: AppErrorOptions = {}) {
    super(DEFAULT_TITLES[code], options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.publicDetail = options.publicDetail;
    this.extra = options.extra ?? {};
    this.headers = options.headers ?? {};
    this.detail = options.detail ?? {};
  }

  get title(): string {
    return DEFAULT_TITLES[this.code];
  }
}

/** `400 validation_failed` naming the offending fields. */
export function validationFailed(errors: FieldError[], publicDetail?: string): AppError {
  return new AppError('validation_failed', {
    extra: { errors },
    ...(publicDetail === undefined ? {} : { publicDetail }),
  });
}

export function isAppError(value: unknown): value is AppError {
  return value instanceof AppError;
}
