/**
 * EU data residency (docs/operations.md "EU data residency"): when
 * `DATA_REGION_ALLOWLIST` is set, every host personal data is sent to — the
 * database, the SMTP relay, SSO issuers — must match one of its entries.
 *
 * An entry is a host suffix: `.eu` matches `smtp.example.eu`; `cleverom.fi`
 * matches `cleverom.fi` and `mail.cleverom.fi`; `127.0.0.1` matches itself.
 * Matching is on whole DNS labels, case-insensitive, ignoring a trailing dot.
 *
 * The list is a deployment promise checked by name, not a geolocation of
 * addresses: it stops a configuration mistake (a US relay, a foreign
 * database host, an IdP an admin pastes in) from silently moving data.
 */
export type DataRegionAllowlist = readonly string[];

const ENTRY = /^\.?(?:[a-z0-9-]+\.)*[a-z0-9-]+$|^\[?[0-9a-f:.]+\]?$/;

/** Parse the comma-separated variable; problems are reported by the caller. */
export function parseDataRegionAllowlist(raw: string): { entries: DataRegionAllowlist; problems: string[] } {
  const entries: string[] = [];
  const problems: string[] = [];
  for (const part of raw.split(',')) {
    const entry = normalizeHost(part.trim());
    if (entry === '') continue;
    if (!ENTRY.test(entry)) problems.push(`DATA_REGION_ALLOWLIST entry "${part.trim()}" is not a host name, suffix (".eu") or IP address`);
    else entries.push(entry);
  }
  if (entries.length === 0 && problems.length === 0) problems.push('DATA_REGION_ALLOWLIST is set but lists no host');
  return { entries, problems };
}

/** Whether `host` (a name or IP, no port) is inside the allow-list. */
export function hostInDataRegion(allowlist: DataRegionAllowlist, host: string): boolean {
  const name = normalizeHost(host);
  if (name === '') return false;
  return allowlist.some((entry) => {
    const suffix = entry.startsWith('.') ? entry.slice(1) : entry;
    return name === suffix || name.endsWith(`.${suffix}`);
  });
}

/**
 * The problem with sending data to `url`, or null when it may be used:
 * always null without an allow-list. For the SSO code: call it on an
 * issuer (and metadata) URL before any request to it, and refuse the
 * connection with the returned sentence.
 */
export function dataRegionProblem(allowlist: DataRegionAllowlist | null, what: string, url: string): string | null {
  if (allowlist === null) return null;
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return `${what} is not a URL`;
  }
  if (hostInDataRegion(allowlist, host)) return null;
  return `${what} host "${normalizeHost(host)}" is outside DATA_REGION_ALLOWLIST`;
}

function normalizeHost(host: string): string {
  return host.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
}
