import * as client from 'openid-client';
import type { OutboundRequest } from '../connections/ssrf-guard.js';
import { OutboundRefused } from '../connections/ssrf-guard.js';

/**
 * The OpenID Connect relying party: the only importer of openid-client
 * (DESIGN.md: one file per security library). openid-client does the
 * protocol checks it owns; this file adds what it leaves to us and
 * translates its errors, once, into our failure reasons.
 *
 * Checked by openid-client (configured here):
 * - `state` exactly (RFC 6749 §10.12), PKCE S256 (RFC 7636 §4.2),
 *   `nonce` exactly (OIDC Core §3.1.3.7 rule 11);
 * - RFC 9207 `iss` in the authorization response, required when the IdP
 *   advertises `authorization_response_iss_parameter_supported`;
 * - ID token `iss` = the discovered issuer (OIDC Core §3.1.3.7 rule 2),
 *   `aud` contains our client id (rule 3), `azp` when several audiences
 *   (rule 4), `exp` with 60 s tolerance (rule 9);
 * - signature against the IdP's JWKS (`enableNonRepudiationChecks`: we do
 *   not rely on TLS alone, OIDC Core §3.1.3.7 rule 6) with the algorithm
 *   allow-list {@link ID_TOKEN_ALGORITHMS} (rule 7; never `none` nor HMAC);
 * - userinfo `sub` = ID token `sub` (OIDC Core §5.3.2).
 *
 * Added here: every `aud` entry must be a trusted audience, and the only
 * audience we trust is our client id (rule 3: "reject the ID Token if it
 * does not list the Client as a valid audience, or if it contains
 * additional audiences not trusted by the Client"; openid-client checks
 * only that our client id is among them);
 * `azp`, when present with one audience, must be us (rule 5);
 * `iat` not in the future and not before the login began (rule 10, 60 s
 * leeway); the ID token header `alg` re-checked against the allow-list;
 * issuer URLs with `/.well-known/` refused (they skip issuer validation);
 * `sub` shape (OIDC Core §2: ≤ 255 ASCII characters).
 */

/** Asymmetric JWS algorithms accepted for ID tokens (RFC 7518 §3.1, RFC 8037). */
export const ID_TOKEN_ALGORITHMS: readonly string[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
/** SECURITY.md: `exp`/`iat` with 60 s leeway. */
export const CLOCK_LEEWAY_SECONDS = 60;

export type OutboundFetch = (url: string, options: OutboundRequest) => Promise<Response>;

/** How the RP talks to IdPs: through the SSRF-guarded fetch, with a timeout. */
export interface OidcTransport {
  fetch: OutboundFetch;
  /** `DANGEROUSLY_ALLOW_LOOPBACK_IDP`: allow http:// (loopback only; the guard enforces that). */
  allowInsecureRequests: boolean;
  timeoutSeconds: number;
}

export interface OidcClientSettings {
  connectionId: string;
  issuerMetadata: Record<string, unknown>;
  clientId: string;
  clientSecret: string;
  scopes: readonly string[];
  redirectUri: string;
}

/** Why a login was refused: a stable reason (audited) and a sentence safe to show. */
export class OidcRejected extends Error {
  constructor(
    readonly reason: string,
    readonly publicDetail: string = 'The identity provider response was rejected.',
    readonly detail: Record<string, unknown> = {},
  ) {
    super(reason);
    this.name = 'OidcRejected';
  }
}

export type DiscoveryOutcome = { kind: 'ok'; issuer: string; metadata: Record<string, unknown> } | { kind: 'failed'; message: string };

export interface AuthorizationRequest {
  url: URL;
  state: string;
  nonce: string;
  codeVerifier: string;
}

/** What the IdP asserted, after every check. */
export interface OidcAssertion {
  subject: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
}

export class OidcRelyingParty {
  /** JWKS per connection+issuer, so each login does not refetch the keys. */
  private readonly jwksCaches = new Map<string, client.ExportedJWKSCache>();

  constructor(private readonly transport: OidcTransport) {}

  /**
   * OpenID Connect Discovery 1.0 §4: fetch `<issuer>/.well-known/openid-configuration`
   * and check the returned `issuer` equals it exactly (§4.3), then our own
   * requirements on the metadata ({@link metadataProblem}).
   */
  async discover(issuer: URL, clientId: string): Promise<DiscoveryOutcome> {
    if (issuer.pathname.includes('/.well-known/')) return { kind: 'failed', message: 'must be the issuer identifier, not a discovery document URL' };
    if (issuer.search !== '') return { kind: 'failed', message: 'must not contain a query (OpenID Connect Discovery §2)' };
    try {
      const config = await client.discovery(issuer, clientId, undefined, client.None(), {
        [client.customFetch]: this.transport.fetch as client.CustomFetch,
        timeout: this.transport.timeoutSeconds,
        execute: this.transport.allowInsecureRequests ? [client.allowInsecureRequests] : [],
      });
      const metadata = JSON.parse(JSON.stringify(config.serverMetadata())) as Record<string, unknown>;
      const problem = metadataProblem(metadata);
      if (problem) return { kind: 'failed', message: problem };
      return { kind: 'ok', issuer: String(metadata.issuer), metadata };
    } catch (error) {
      return { kind: 'failed', message: discoveryFailure(error) };
    }
  }

  /**
   * The authorization request (OIDC Core §3.1.2.1): response_type `code`,
   * fresh `state` and `nonce`, PKCE `S256` (RFC 7636 §4.3; RFC 9700 §2.1.1).
   */
  async authorizationRequest(settings: OidcClientSettings, now: Date, loginHint: string | null): Promise<AuthorizationRequest> {
    const config = this.configuration(settings, now);
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const parameters: Record<string, string> = {
      redirect_uri: settings.redirectUri,
      scope: settings.scopes.join(' '),
      state,
      nonce,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    };
    if (loginHint) parameters.login_hint = loginHint;
    return { url: client.buildAuthorizationUrl(config, parameters), state, nonce, codeVerifier };
  }

  /**
   * Validate the authorization response at our redirect URI, redeem the code
   * and check the ID token and userinfo (see the file comment for the split
   * between openid-client and us). Throws {@link OidcRejected}.
   */
  async completeAuthorization(
    settings: OidcClientSettings,
    input: { callbackUrl: URL; state: string; nonce: string; codeVerifier: string; now: Date; loginStartedAt: Date },
  ): Promise<OidcAssertion> {
    const config = this.configuration(settings, input.now);
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(config, input.callbackUrl, {
        pkceCodeVerifier: input.codeVerifier,
        expectedState: input.state,
        expectedNonce: input.nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      throw rejection(error, 'token');
    } finally {
      this.keepJwks(settings, config);
    }
    const claims = tokens.claims();
    if (!claims || typeof tokens.id_token !== 'string') throw new OidcRejected('id_token_missing');

    const alg = headerAlg(tokens.id_token);
    if (alg === null || !ID_TOKEN_ALGORITHMS.includes(alg)) throw new OidcRejected('alg_refused', undefined, { alg });
    // OIDC Core §3.1.3.7 rule 3: no audience we do not trust, even next to ours and with azp = us.
    const untrusted = untrustedAudiences(claims.aud, settings.clientId);
    if (untrusted.length > 0) {
      throw new OidcRejected('audience_untrusted', 'The identity provider issued the sign-in for other applications too, so it was refused.', {
        untrustedAudiences: untrusted.slice(0, 5).map((a) => a.slice(0, 64)),
      });
    }
    // OIDC Core §3.1.3.7 rule 5: an azp, even with a single audience, must be us.
    if (claims.azp !== undefined && claims.azp !== settings.clientId) throw new OidcRejected('azp_mismatch');
    // Rule 10: iat within leeway of now, and not before this login began.
    const nowSeconds = Math.floor(input.now.getTime() / 1000);
    if (claims.iat > nowSeconds + CLOCK_LEEWAY_SECONDS) throw new OidcRejected('iat_in_future', undefined, { iat: claims.iat, now: nowSeconds });
    if (claims.iat < Math.floor(input.loginStartedAt.getTime() / 1000) - CLOCK_LEEWAY_SECONDS) {
      throw new OidcRejected('iat_before_login', undefined, { iat: claims.iat, now: nowSeconds });
    }
    if (!/^[\x21-\x7e]{1,255}$/.test(claims.sub)) throw new OidcRejected('subject_invalid');

    let userinfo: client.UserInfoResponse | null = null;
    if (typeof settings.issuerMetadata.userinfo_endpoint === 'string' && tokens.access_token) {
      try {
        userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
      } catch (error) {
        throw rejection(error, 'userinfo');
      }
    }
    // Email and its verification flag come from one source, never mixed.
    const source: Record<string, unknown> = userinfo && typeof userinfo.email === 'string' ? userinfo : claims;
    const name = typeof userinfo?.name === 'string' ? userinfo.name : typeof claims.name === 'string' ? claims.name : null;
    return {
      subject: claims.sub,
      email: typeof source.email === 'string' ? source.email : null,
      // Only a JSON true counts (SECURITY.md: never trust an unverified email claim).
      emailVerified: source.email_verified === true,
      name,
    };
  }

  /** Forget cached keys of a connection (its issuer or credentials changed). */
  forget(connectionId: string): void {
    for (const key of this.jwksCaches.keys()) if (key.startsWith(`${connectionId} `)) this.jwksCaches.delete(key);
  }

  private cacheKey(settings: OidcClientSettings): string {
    return `${settings.connectionId} ${String(settings.issuerMetadata.issuer)} ${String(settings.issuerMetadata.jwks_uri)}`;
  }

  private keepJwks(settings: OidcClientSettings, config: client.Configuration): void {
    const cache = client.getJwksCache(config);
    if (cache) this.jwksCaches.set(this.cacheKey(settings), cache);
  }

  private configuration(settings: OidcClientSettings, now: Date): client.Configuration {
    const supported = settings.issuerMetadata.id_token_signing_alg_values_supported;
    const metadata = {
      ...settings.issuerMetadata,
      // The algorithm allow-list: what the IdP offers, cut down to ours.
      id_token_signing_alg_values_supported: allowedAlgorithms(supported),
    } as client.ServerMetadata;
    const clientMetadata: Partial<client.ClientMetadata> = {
      client_secret: settings.clientSecret,
      // Our clock (injectable) is the time source for every JWT timestamp check.
      [client.clockSkew]: Math.round((now.getTime() - Date.now()) / 1000),
      [client.clockTolerance]: CLOCK_LEEWAY_SECONDS,
    };
    const config = new client.Configuration(metadata, settings.clientId, clientMetadata, clientAuthentication(metadata, settings.clientSecret));
    config[client.customFetch] = this.transport.fetch as client.CustomFetch;
    config.timeout = this.transport.timeoutSeconds;
    if (this.transport.allowInsecureRequests) client.allowInsecureRequests(config);
    client.enableNonRepudiationChecks(config);
    const jwks = this.jwksCaches.get(this.cacheKey(settings));
    if (jwks) client.setJwksCache(config, jwks);
    return config;
  }
}

function allowedAlgorithms(supported: unknown): string[] {
  // OIDC Discovery §3: id_token_signing_alg_values_supported is REQUIRED; RS256 is the default.
  const offered = Array.isArray(supported) ? supported.filter((a): a is string => typeof a === 'string') : ['RS256'];
  return offered.filter((a) => ID_TOKEN_ALGORITHMS.includes(a));
}

/** client_secret_basic is the default (OIDC Core §9); post when that is all the IdP takes. */
function clientAuthentication(metadata: client.ServerMetadata, secret: string): client.ClientAuth {
  const methods = metadata.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
  if (!methods.includes('client_secret_basic') && methods.includes('client_secret_post')) return client.ClientSecretPost(secret);
  return client.ClientSecretBasic(secret);
}

/** What we require of an IdP's metadata beyond what discovery checks; null when fine. */
export function metadataProblem(metadata: Record<string, unknown>): string | null {
  for (const field of ['authorization_endpoint', 'token_endpoint', 'jwks_uri']) {
    if (typeof metadata[field] !== 'string') return `the issuer metadata has no ${field}`;
  }
  const responseTypes = metadata.response_types_supported;
  if (Array.isArray(responseTypes) && !responseTypes.includes('code')) return 'the issuer does not support the authorization code flow';
  const pkce = metadata.code_challenge_methods_supported;
  if (Array.isArray(pkce) && !pkce.includes('S256')) return 'the issuer does not support PKCE S256';
  if (allowedAlgorithms(metadata.id_token_signing_alg_values_supported).length === 0) {
    return `the issuer signs ID tokens with none of ${ID_TOKEN_ALGORITHMS.join(', ')}`;
  }
  const methods = metadata.token_endpoint_auth_methods_supported;
  if (Array.isArray(methods) && !methods.includes('client_secret_basic') && !methods.includes('client_secret_post')) {
    return 'the issuer accepts neither client_secret_basic nor client_secret_post';
  }
  return null;
}

/** Every URL in the metadata we will visit or send the browser to. */
export function metadataUrls(metadata: Record<string, unknown>): { field: string; url: string }[] {
  return ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'userinfo_endpoint']
    .filter((field) => typeof metadata[field] === 'string')
    .map((field) => ({ field, url: metadata[field] as string }));
}

/**
 * The audiences of an ID token other than the ones the client trusts. The
 * trusted set is our client id alone: no connection configures further
 * audiences (OIDC Core §3.1.3.7 rule 3).
 */
function untrustedAudiences(aud: string | string[], clientId: string): string[] {
  const audiences = Array.isArray(aud) ? aud : [aud];
  return audiences.filter((a) => a !== clientId);
}

function headerAlg(jwt: string): string | null {
  try {
    const header = JSON.parse(Buffer.from(jwt.split('.')[0] ?? '', 'base64url').toString('utf8')) as { alg?: unknown };
    return typeof header.alg === 'string' ? header.alg : null;
  } catch {
    return null;
  }
}

/** The chain of causes of an error, outermost first. */
function causes(error: unknown): unknown[] {
  const chain: unknown[] = [];
  let current: unknown = error;
  while (current !== undefined && current !== null && chain.length < 8) {
    chain.push(current);
    current = current instanceof Error ? current.cause : (current as { cause?: unknown }).cause;
  }
  return chain;
}

function messagesOf(error: unknown): string {
  return causes(error)
    .map((c) => (c instanceof Error ? c.message : ''))
    .join(' | ');
}

function codesOf(error: unknown): string[] {
  return causes(error)
    .map((c) => (c as { code?: unknown }).code)
    .filter((c): c is string => typeof c === 'string');
}

function isTimeout(error: unknown): boolean {
  return causes(error).some((c) => c instanceof Error && (c.name === 'TimeoutError' || c.name === 'AbortError' || (c as { code?: string }).code === 'OAUTH_TIMEOUT'));
}

function refusedByGuard(error: unknown): OutboundRefused | undefined {
  return causes(error).find((c): c is OutboundRefused => c instanceof OutboundRefused);
}

function discoveryFailure(error: unknown): string {
  const refused = refusedByGuard(error);
  if (refused) return refused.reason;
  if (isTimeout(error)) return 'did not answer within 5 seconds';
  const text = messagesOf(error);
  if (codesOf(error).includes('OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED') || /issuer/.test(text)) return 'the discovery document names a different issuer';
  if (/HTTPS/i.test(text)) return 'must be an https URL';
  if (/status code|content-type|parsing|JSON/i.test(text)) return 'did not return a valid OpenID Connect discovery document';
  return 'is unreachable';
}

/** The one translation of openid-client errors into failure reasons. */
function rejection(error: unknown, step: 'token' | 'userinfo'): OidcRejected {
  if (error instanceof client.AuthorizationResponseError) {
    return new OidcRejected('idp_error', 'The identity provider did not complete the sign-in.', { error: error.error.slice(0, 64) });
  }
  if (error instanceof client.ResponseBodyError) {
    return new OidcRejected(step === 'token' ? 'token_exchange_failed' : 'userinfo_failed', undefined, { error: error.error.slice(0, 64), status: error.status });
  }
  if (refusedByGuard(error)) return new OidcRejected('idp_address_refused');
  if (isTimeout(error)) return new OidcRejected('idp_timeout', 'The identity provider did not answer in time.');
  const text = messagesOf(error);
  // The claim at fault: named in the error's cause, or in its message (`JWT "nonce" (nonce) claim missing`).
  const claim =
    causes(error)
      .map((c) => (c as { cause?: { claim?: unknown } }).cause?.claim ?? (c as { claim?: unknown }).claim)
      .find((c): c is string => typeof c === 'string') ?? /JWT "(\w+)"/.exec(text)?.[1];
  if (/response parameter "iss" \(issuer\) missing/.test(text)) return new OidcRejected('iss_missing');
  if (/"iss" \(issuer\) response parameter/.test(text)) return new OidcRejected('iss_mismatch');
  if (/"state" response parameter/.test(text)) return new OidcRejected('state_mismatch');
  if (/"sub" property value/.test(text)) return new OidcRejected('userinfo_subject_mismatch');
  if (/signature verification failed/.test(text)) return new OidcRejected('signature_invalid');
  if (/"alg"|unsupported JWS|unsupported operation/i.test(text)) return new OidcRejected('alg_refused');
  if (codesOf(error).includes('OAUTH_KEY_SELECTION_FAILED')) {
    return new OidcRejected('signing_key_not_found');
  }
  if (claim === 'nonce') return new OidcRejected('nonce_mismatch');
  if (claim === 'aud' || /"aud"/.test(text)) return new OidcRejected('audience_mismatch');
  if (claim === 'azp') return new OidcRejected('azp_mismatch');
  if (claim === 'iss' || /"iss" \(issuer\) claim/.test(text)) return new OidcRejected('issuer_mismatch');
  if (/timestamp|"exp"|"nbf"|"iat"|auth_time/.test(text)) return new OidcRejected('token_expired');
  if (/fetch failed|ECONNREFUSED|ENOTFOUND|ECONNRESET|socket/i.test(text)) return new OidcRejected('idp_unreachable', 'The identity provider could not be reached.');
  return new OidcRejected(step === 'token' ? 'id_token_invalid' : 'userinfo_invalid', undefined, { message: text.slice(0, 300) });
}
