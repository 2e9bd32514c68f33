import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

/**
 * ID-token and response defects a certified provider will not produce; the
 * tiny IdP below produces them on purpose so the tests can show each one
 * is refused.
 */
export type IdpDefect =
  | 'none'
  | 'alg_none'
  | 'bad_signature'
  | 'hs256'
  | 'wrong_aud'
  | 'multi_aud_no_azp'
  | 'multi_aud_wrong_azp'
  | 'multi_aud_untrusted'
  /** Not a defect: `aud` as a one-element array (OIDC Core §2 allows either shape). */
  | 'aud_as_array'
  | 'single_aud_wrong_azp'
  | 'wrong_nonce'
  | 'missing_nonce'
  | 'wrong_iss'
  | 'expired'
  | 'expired_within_leeway'
  | 'iat_in_future'
  | 'iat_before_login'
  | 'userinfo_sub_mismatch'
  | 'iss_param_wrong'
  | 'iss_param_missing';

export interface JoseIdpClaims {
  sub: string;
  email?: string;
  email_verified?: unknown;
  name?: string;
}

interface PendingCode {
  clientId: string;
  nonce: string | undefined;
  codeChallenge: string;
  redirectUri: string;
}

/**
 * A minimal OpenID Provider built on jose: discovery, JWKS, authorize (no
 * login page: it answers at once for `claims`), token (checks client
 * secret, code and PKCE S256), userinfo. `defect` makes it misbehave.
 */
export class JoseIdp {
  defect: IdpDefect = 'none';
  claims: JoseIdpClaims = { sub: 'jose-user', email: 'jose@example.test', email_verified: true, name: 'Jose User' };
  /** Extra discovery metadata (e.g. to advertise unsafe algorithms). */
  metadataOverrides: Record<string, unknown> = {};
  readonly clientId = 'jose-client';
  readonly clientSecret = `jose-secret-${randomBytes(8).toString('hex')}`;
  private readonly codes = new Map<string, PendingCode>();
  private readonly tokens = new Map<string, JoseIdpClaims>();

  private constructor(
    readonly issuer: string,
    private readonly server: Server,
    private readonly key: CryptoKey,
    private readonly otherKey: CryptoKey,
    private readonly publicJwk: JWK,
    private readonly now: () => number,
  ) {}

  static async start(options: { now?: () => number } = {}): Promise<JoseIdp> {
    let handler: (req: IncomingMessage, res: ServerResponse) => void = () => {};
    const server = createServer((req, res) => handler(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const other = await generateKeyPair('RS256');
    const publicJwk = { ...(await exportJWK(publicKey)), kid: 'jose-key', alg: 'RS256', use: 'sig' };
    const idp = new JoseIdp(`http://127.0.0.1:${port}`, server, privateKey, other.privateKey, publicJwk, options.now ?? Date.now);
    handler = (req, res) => {
      idp.handle(req, res).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
    };
    return idp;
  }

  metadata(): Record<string, unknown> {
    return {
      issuer: this.issuer,
      authorization_endpoint: `${this.issuer}/authorize`,
      token_endpoint: `${this.issuer}/token`,
      jwks_uri: `${this.issuer}/jwks`,
      userinfo_endpoint: `${this.issuer}/userinfo`,
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic'],
      authorization_response_iss_parameter_supported: true,
      ...this.metadataOverrides,
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.issuer);
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    switch (url.pathname) {
      case '/.well-known/openid-configuration':
        return json(200, this.metadata());
      case '/jwks':
        return json(200, { keys: [this.publicJwk] });
      case '/authorize': {
        const p = url.searchParams;
        const code = randomBytes(16).toString('base64url');
        this.codes.set(code, {
          clientId: p.get('client_id') ?? '',
          nonce: p.get('nonce') ?? undefined,
          codeChallenge: p.get('code_challenge') ?? '',
          redirectUri: p.get('redirect_uri') ?? '',
        });
        const back = new URL(p.get('redirect_uri') ?? '');
        back.searchParams.set('code', code);
        back.searchParams.set('state', p.get('state') ?? '');
        if (this.defect === 'iss_param_wrong') back.searchParams.set('iss', 'https://evil.example');
        else if (this.defect !== 'iss_param_missing') back.searchParams.set('iss', this.issuer);
        res.writeHead(302, { location: back.href });
        res.end();
        return;
      }
      case '/token': {
        const body = new URLSearchParams(await readBody(req));
        const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
        const [id, secret] = basic ? Buffer.from(basic, 'base64').toString('utf8').split(':').map(decodeURIComponent) : [];
        if (id !== this.clientId || secret !== this.clientSecret) return json(401, { error: 'invalid_client' });
        const pending = this.codes.get(body.get('code') ?? '');
        this.codes.delete(body.get('code') ?? '');
        if (!pending || pending.clientId !== id || pending.redirectUri !== body.get('redirect_uri')) return json(400, { error: 'invalid_grant' });
        const challenge = createHash('sha256').update(body.get('code_verifier') ?? '').digest('base64url');
        if (challenge !== pending.codeChallenge) return json(400, { error: 'invalid_grant', error_description: 'PKCE' });
        const accessToken = randomBytes(16).toString('base64url');
        this.tokens.set(accessToken, { ...this.claims });
        return json(200, { access_token: accessToken, token_type: 'Bearer', expires_in: 300, id_token: await this.idToken(pending) });
      }
      case '/userinfo': {
        const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
        const claims = token ? this.tokens.get(token) : undefined;
        if (!claims) return json(401, { error: 'invalid_token' });
        return json(200, this.defect === 'userinfo_sub_mismatch' ? { ...claims, sub: 'somebody-else' } : claims);
      }
      default:
        res.statusCode = 404;
        res.end();
    }
  }

  private async idToken(pending: PendingCode): Promise<string> {
    const now = Math.floor(this.now() / 1000);
    const d = this.defect;
    const payload: Record<string, unknown> = { sub: this.claims.sub, email: this.claims.email, email_verified: this.claims.email_verified, name: this.claims.name };
    if (d !== 'missing_nonce') payload.nonce = d === 'wrong_nonce' ? 'not-the-nonce' : pending.nonce;
    if (d === 'multi_aud_wrong_azp' || d === 'single_aud_wrong_azp') payload.azp = 'another-client';
    if (d === 'multi_aud_untrusted') payload.azp = pending.clientId;
    const audience = ((): string | string[] => {
      if (d === 'wrong_aud') return 'another-client';
      if (d === 'multi_aud_no_azp' || d === 'multi_aud_wrong_azp') return [pending.clientId, 'another-client'];
      if (d === 'multi_aud_untrusted') return [pending.clientId, 'evil'];
      if (d === 'aud_as_array') return [pending.clientId];
      return pending.clientId;
    })();
    const iat = d === 'iat_in_future' ? now + 600 : d === 'iat_before_login' ? now - 3600 : now;
    const exp = d === 'expired' ? now - 300 : d === 'expired_within_leeway' ? now - 30 : d === 'iat_before_login' ? now + 600 : iat + 600;
    const claims = { ...payload, iss: d === 'wrong_iss' ? 'https://evil.example' : this.issuer, aud: audience, iat, exp };

    if (d === 'alg_none') {
      const enc = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
      return `${enc({ alg: 'none', typ: 'JWT' })}.${enc(claims)}.`;
    }
    if (d === 'hs256') {
      return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(this.clientSecret));
    }
    const key = d === 'bad_signature' ? this.otherKey : this.key;
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'jose-key', typ: 'JWT' }).sign(key);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (chunk: Buffer) => {
      data += chunk.toString('utf8');
    });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}
