import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { PUBLIC_ORIGIN } from './app.js';

/** The callback our app registers at every IdP. */
export const REDIRECT_URI = `${PUBLIC_ORIGIN}/v1/sso/oidc/callback`;

export interface TestAccount {
  email?: string;
  email_verified?: boolean;
  name?: string;
}

export interface TestClient {
  clientId: string;
  clientSecret: string;
}

/**
 * A real OpenID Provider (panva's certified oidc-provider) in-process on
 * 127.0.0.1:0. Its login page is replaced by a minimal interaction that
 * logs in `loginAs` (set by the test) without a form; consent is implied
 * by an existing grant. Everything else — discovery, JWKS, authorization,
 * PKCE, token, userinfo, RFC 9207 `iss` — is the provider's own code.
 */
export class TestOidcProvider {
  /** Accounts by subject. */
  readonly accounts = new Map<string, TestAccount>();
  /** Who the next interaction logs in. */
  loginAs: string | null = null;
  /** The parameters of the last authorization request the provider received. */
  lastAuthorization: URLSearchParams | null = null;

  private constructor(
    readonly issuer: string,
    readonly clients: TestClient[],
    private readonly server: Server,
    readonly provider: Provider,
  ) {}

  /** `redirectUri`: the callback of an app on another origin (the browser tests listen on 127.0.0.1:<port>). */
  static async start(options: { clients?: number; redirectUri?: string } = {}): Promise<TestOidcProvider> {
    let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
      res.statusCode = 503;
      res.end();
    };
    const server = createServer((req, res) => handler(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const issuer = `http://127.0.0.1:${port}`;

    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    const jwk = { ...(await exportJWK(privateKey)), kid: 'test-rs256', alg: 'RS256', use: 'sig' };
    const clients: TestClient[] = Array.from({ length: options.clients ?? 2 }, (_, i) => ({
      clientId: `cleverom-${i + 1}`,
      clientSecret: `s3cret-${i + 1}-${Math.random().toString(36).slice(2)}-not-in-the-db`,
    }));

    let instance: TestOidcProvider | undefined;
    const configuration: Configuration = {
      clients: clients.map((c) => ({
        client_id: c.clientId,
        client_secret: c.clientSecret,
        redirect_uris: [options.redirectUri ?? REDIRECT_URI],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      })),
      jwks: { keys: [jwk as never] },
      cookies: { keys: ['test-cookie-key-not-secret'] },
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
      features: { devInteractions: { enabled: false } },
      ttl: { AccessToken: 3600, AuthorizationCode: 600, Grant: 3600, IdToken: 3600, Interaction: 600, Session: 3600 },
      interactions: { url: (_ctx: KoaContextWithOIDC, interaction) => `/interaction/${interaction.uid}` },
      findAccount: async (_ctx: KoaContextWithOIDC, id: string) => {
        const account = instance?.accounts.get(id);
        if (!account) return undefined;
        return { accountId: id, claims: async () => ({ sub: id, ...account }) };
      },
      // Consent is implied for the test clients: a grant for what was asked.
      loadExistingGrant: async (ctx: KoaContextWithOIDC) => {
        const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session?.grantIdFor(ctx.oidc.client?.clientId ?? '');
        if (grantId) return ctx.oidc.provider.Grant.find(grantId);
        if (!ctx.oidc.session?.accountId || !ctx.oidc.client) return undefined;
        const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
        grant.addOIDCScope(String(ctx.oidc.params?.scope ?? 'openid'));
        await grant.save();
        return grant;
      },
    };
    const provider = new Provider(issuer, configuration);
    const callback = provider.callback();
    instance = new TestOidcProvider(issuer, clients, server, provider);
    const idp = instance;
    handler = (req, res) => {
      const url = new URL(req.url ?? '/', issuer);
      if (url.pathname === '/auth') idp.lastAuthorization = url.searchParams;
      if (url.pathname.startsWith('/interaction/')) {
        void idp.interact(req, res).catch((error: unknown) => {
          res.statusCode = 500;
          res.end(String(error));
        });
        return;
      }
      callback(req, res);
    };
    return instance;
  }

  private async interact(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const details = await this.provider.interactionDetails(req, res);
    if (details.prompt.name === 'login') {
      if (!this.loginAs) throw new Error('TestOidcProvider.loginAs is not set');
      await this.provider.interactionFinished(req, res, { login: { accountId: this.loginAs } }, { mergeWithLastSubmission: false });
      return;
    }
    const grant = new this.provider.Grant({ clientId: String(details.params.client_id), accountId: String(details.session?.accountId) });
    grant.addOIDCScope(String(details.params.scope ?? 'openid'));
    await this.provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
  }

  client(index = 0): TestClient {
    const c = this.clients[index];
    if (!c) throw new Error(`no client ${index}`);
    return c;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}
