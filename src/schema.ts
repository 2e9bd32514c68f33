/** Every table of the service, for drizzle-kit and the database handle. */
export * from './orgs/tables.js';
export * from './users/tables.js';
export * from './auth/session/tables.js';
export * from './auth/password/tables.js';
export * from './service-tokens/tables.js';
export * from './http/tables.js';
export * from './audit/tables.js';
export * from './auth/totp/tables.js';
export * from './auth/challenge/tables.js';
export * from './staff/tables.js';
export * from './orgs/domains/tables.js';
export * from './sso/connections/tables.js';
export * from './sso/state/tables.js';
export * from './sso/tables.js';
export * from './sso/saml/tables.js';
export * from './privacy/tables.js';
