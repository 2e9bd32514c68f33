import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { hostInDataRegion, type DataRegionAllowlist } from '../../config/data-region.js';
import type { DnsResolver, ResolvedAddress } from '../../platform/dns.js';

/**
 * SSRF guard for the URLs org admins give us (IdP issuers and every endpoint
 * their metadata names). SECURITY.md "SSRF": they must be https and resolve
 * to public addresses; the loudly named `DANGEROUSLY_ALLOW_LOOPBACK_IDP`
 * switch (tests, local trials) additionally allows `http://` and https to
 * loopback hosts — never to other private ranges.
 *
 * The check runs twice: once up front with a readable field error
 * ({@link checkOutboundUrl}), and again inside the connection itself
 * ({@link guardedFetch}), where the addresses that are actually dialled are
 * the ones checked (no DNS-rebinding window between check and use).
 *
 * @see OWASP ASVS 5.0 V1.3 (SSRF), RFC 6890 (special-purpose address registries)
 */
export interface OutboundPolicy {
  /** `DANGEROUSLY_ALLOW_LOOPBACK_IDP`: loopback addresses and http to them. */
  allowLoopback: boolean;
  resolver: DnsResolver;
  /** Per request, connect + response (SECURITY.md: 5 s to the IdP). */
  timeoutMs: number;
  /** `DATA_REGION_ALLOWLIST` (docs/operations.md "EU data residency"): IdP hosts must be inside it when set. */
  dataRegion?: DataRegionAllowlist | null;
}

export class OutboundRefused extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'OutboundRefused';
  }
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Special-purpose ranges (RFC 6890 and its IANA registries): never an IdP. */
const NON_PUBLIC = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16],
  ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) {
  NON_PUBLIC.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001::', 23],
  ['2001:db8::', 32], ['2002::', 16], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) {
  NON_PUBLIC.addSubnet(net, bits, 'ipv6');
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), if it is one. */
function mappedIpv4(address: string): string | null {
  const lower = address.toLowerCase();
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted?.[1]) return dotted[1];
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex?.[1] && hex[2]) {
    const hi = parseInt(hex[1], 16);
    const lo = parseInt(hex[2], 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return null;
}

export type AddressVerdict = 'public' | 'loopback' | 'private';

/** Classify one IP address literal. */
export function classifyAddress(address: string): AddressVerdict {
  const v4 = mappedIpv4(address);
  const ip = v4 ?? address.replace(/^\[|\]$/g, '');
  const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
  if (isIP(ip) === 0) return 'private';
  if (LOOPBACK.check(ip, family)) return 'loopback';
  return NON_PUBLIC.check(ip, family) ? 'private' : 'public';
}

function addressAllowed(address: string, policy: Pick<OutboundPolicy, 'allowLoopback'>): boolean {
  const verdict = classifyAddress(address);
  return verdict === 'public' || (verdict === 'loopback' && policy.allowLoopback);
}

function isLoopbackHostName(hostname: string): boolean {
  const bare = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || (isIP(bare) !== 0 && classifyAddress(bare) === 'loopback');
}

/**
 * The URL rules without DNS: https only (http only to a loopback host with
 * the switch on), no credentials, no fragment. Returns a reason or null.
 */
export function urlShapeProblem(url: URL, policy: Pick<OutboundPolicy, 'allowLoopback' | 'dataRegion'>): string | null {
  if (url.username !== '' || url.password !== '') return 'must not contain credentials';
  if (url.hash !== '') return 'must not contain a fragment';
  // Residency: personal data (logins, emails) flows to and from the IdP.
  if (policy.dataRegion && !hostInDataRegion(policy.dataRegion, url.hostname)) return 'host is outside DATA_REGION_ALLOWLIST';
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:' && policy.allowLoopback && isLoopbackHostName(url.hostname)) return null;
  return 'must be an https URL';
}

/**
 * Full up-front check of a URL: shape, then every address its host resolves
 * to must be public. Returns a reason (safe to show the admin) or null.
 */
export async function checkOutboundUrl(url: URL, policy: OutboundPolicy): Promise<string | null> {
  const shape = urlShapeProblem(url, policy);
  if (shape) return shape;
  let addresses: ResolvedAddress[];
  try {
    addresses = await resolveHost(url.hostname, policy.resolver);
  } catch {
    return 'host name does not resolve';
  }
  if (addresses.length === 0) return 'host name does not resolve';
  for (const a of addresses) {
    if (!addressAllowed(a.address, policy)) return 'resolves to a private or reserved address';
  }
  return null;
}

async function resolveHost(hostname: string, resolver: DnsResolver): Promise<ResolvedAddress[]> {
  const bare = hostname.replace(/^\[|\]$/g, '');
  const family = isIP(bare);
  if (family !== 0) return [{ address: bare, family: family === 6 ? 6 : 4 }];
  return resolver.lookup(bare);
}

/** The request shape openid-client hands to a custom fetch (`customFetch`). */
export interface OutboundRequest {
  method: string;
  headers: Record<string, string>;
  body?: string | URLSearchParams | Uint8Array | ArrayBuffer | ReadableStream | null | undefined;
  signal?: AbortSignal | undefined;
}

/** Largest IdP response we read (discovery, JWKS, tokens, userinfo). */
const MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * A `fetch` for IdP back-channel calls: the socket's own DNS lookup refuses
 * non-public addresses (so the checked address is the dialled one), IP
 * literals are checked before dialling, redirects are never followed, the
 * response is capped at 1 MiB and the whole exchange at `timeoutMs`.
 */
export function guardedFetch(policy: OutboundPolicy): (url: string, options: OutboundRequest) => Promise<Response> {
  const lookup: LookupFunction = (hostname, options, callback) => {
    resolveHost(hostname, policy.resolver).then(
      (addresses) => {
        const refused = addresses.find((a) => !addressAllowed(a.address, policy));
        if (refused || addresses.length === 0) {
          callback(Object.assign(new OutboundRefused('resolves to a private or reserved address'), { code: 'ESSRF' }), '', 4);
          return;
        }
        const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
        const list = wanted.length > 0 ? wanted : addresses;
        if (options.all) {
          (callback as unknown as (err: null, list: ResolvedAddress[]) => void)(null, list);
        } else {
          const first = list[0] as ResolvedAddress;
          callback(null, first.address, first.family);
        }
      },
      (error: unknown) => callback(error as NodeJS.ErrnoException, '', 4),
    );
  };

  return async (input, options) => {
    const url = new URL(input);
    const shape = urlShapeProblem(url, policy);
    if (shape) throw new OutboundRefused(`IdP URL ${shape}`);
    const literal = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(literal) !== 0 && !addressAllowed(literal, policy)) throw new OutboundRefused('resolves to a private or reserved address');
    const body = await bodyBytes(options.body);
    const timeout = AbortSignal.timeout(policy.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;

    return new Promise<Response>((resolve, reject) => {
      const req = send(url, { method: options.method, headers: options.headers, lookup, signal }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy(new OutboundRefused('IdP response too large'));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (value === undefined) continue;
            for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
          }
          const status = res.statusCode ?? 502;
          const noBody = status === 204 || status === 304 || options.method === 'HEAD';
          resolve(new Response(noBody ? null : Buffer.concat(chunks), { status, headers }));
        });
      });
      req.on('error', reject);
      if (body) req.write(body);
      req.end();
    });
  };
}

async function bodyBytes(body: OutboundRequest['body']): Promise<Buffer | null> {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof URLSearchParams) return Buffer.from(body.toString(), 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body);
  if (body instanceof ArrayBuffer) return Buffer.from(new Uint8Array(body));
  return Buffer.from(await new Response(body).arrayBuffer());
}
