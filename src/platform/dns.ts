import { promises as dns } from 'node:dns';

/** One address a host name resolves to. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/**
 * The DNS questions the service asks: TXT records (domain verification) and
 * every address of a host (the SSRF guard checks each one). Injectable so
 * tests can answer for domains they do not own; the default is Node's
 * resolver (`node:dns/promises`).
 */
export interface DnsResolver {
  /** TXT records at `name`, each as its character-strings (RFC 1035 §3.3.14). */
  resolveTxt(name: string): Promise<string[][]>;
  /** Every address `hostname` resolves to (getaddrinfo, like a connection would). */
  lookup(hostname: string): Promise<ResolvedAddress[]>;
}

export const systemDnsResolver: DnsResolver = {
  resolveTxt: (name) => dns.resolveTxt(name),
  lookup: async (hostname) => {
    const found = await dns.lookup(hostname, { all: true, verbatim: true });
    return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
  },
};
