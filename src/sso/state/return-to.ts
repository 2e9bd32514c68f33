/**
 * `returnTo` after an SSO login (SECURITY.md "redirects"; OWASP ASVS 5.0
 * V3.7 open redirect): a relative path on our origin only. It must start
 * with exactly one `/`; no `//` or `/\` (protocol-relative to another host),
 * no backslash anywhere (browsers read it as `/`), no whitespace or control
 * characters (browsers strip tabs and newlines, turning `/\t/evil` into
 * `//evil`), no scheme. At most 1024 characters.
 *
 * Returns the path, or null when refused. `DEFAULT_RETURN_TO` when absent.
 */
export const DEFAULT_RETURN_TO = '/';

export function safeReturnTo(input: string | undefined, publicUrl: URL): string | null {
  if (input === undefined || input === '') return DEFAULT_RETURN_TO;
  if (input.length > 1024) return null;
  if (!input.startsWith('/') || input.startsWith('//') || input.startsWith('/\\')) return null;
  if (/[\\\s\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(input)) return null;
  // Defence in depth: resolved against our origin it must stay on our origin.
  let resolved: URL;
  try {
    resolved = new URL(input, publicUrl);
  } catch {
    return null;
  }
  if (resolved.origin !== publicUrl.origin) return null;
  return `${resolved.pathname}${resolved.search}${resolved.hash}`;
}
