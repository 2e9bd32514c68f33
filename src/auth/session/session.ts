import type { Org } from '../../orgs/org.js';
import type { User } from '../../users/user.js';

export type AuthMethod = 'password' | 'oidc' | 'saml' | 'invitation' | 'signup' | 'password_reset';
export type Aal = 1 | 2;

export interface Session {
  id: string;
  userId: string;
  aal: Aal;
  authMethod: AuthMethod;
  createdAt: Date;
  lastSeenAt: Date;
  /** Absolute expiry. */
  expiresAt: Date;
  idleTimeoutMs: number;
  /** The last authentication in this session: the login, or the last `POST /v1/me/reauthenticate`. */
  reauthenticatedAt: Date | null;
  /**
   * The last time a second factor was proven in this session: a login or
   * enrolment at AAL2, or a reauthentication with a TOTP code. A password
   * reauthentication leaves it as it was (issue 23 item 5: staff decisions
   * need a second factor within the last 10 minutes, not any password).
   */
  secondFactorAt: Date | null;
  ip: string | null;
  userAgent: string | null;
}

/** A session just minted: the token is returned to the client once, only its hash is stored. */
export interface NewSession {
  token: string;
  tokenHash: string;
  session: Session;
}

/** A valid session with everything a request needs, from one lookup. */
export interface SessionContext {
  session: Session;
  user: User;
  org: Org | null;
}

export interface SessionView {
  id: string;
  aal: Aal;
  authMethod: AuthMethod;
  createdAt: string;
  expiresAt: string;
}

export function sessionView(session: Session): SessionView {
  return {
    id: session.id,
    aal: session.aal,
    authMethod: session.authMethod,
    createdAt: session.createdAt.toISOString(),
    expiresAt: session.expiresAt.toISOString(),
  };
}
