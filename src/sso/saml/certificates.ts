import { X509Certificate } from 'node:crypto';

/** At most this many signing certificates per connection (rollover needs two or three). */
export const MAX_IDP_CERTIFICATES = 5;

/**
 * An IdP signing certificate as an admin or a metadata document gives it —
 * PEM (`-----BEGIN CERTIFICATE-----`) or the bare base64 of its DER, as in
 * `<ds:X509Certificate>` (XML-DSig §4.4.4) — to canonical base64 DER.
 * Returns null when it is not one parseable X.509 certificate with an RSA
 * or EC public key (what SAML IdPs sign with; xml-crypto verifies these).
 */
export function normalizeCertificate(input: string): string | null {
  const trimmed = input.trim();
  const pem = /^-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----$/.exec(trimmed);
  const body = (pem ? pem[1] ?? '' : trimmed).replace(/\s+/g, '');
  if (body === '' || body.length > 16_384 || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return null;
  const der = Buffer.from(body, 'base64');
  try {
    const certificate = new X509Certificate(der);
    const keyType = certificate.publicKey.asymmetricKeyType;
    if (keyType !== 'rsa' && keyType !== 'ec') return null;
    return certificate.raw.toString('base64');
  } catch {
    return null;
  }
}

/** Base64 DER to the PEM the XML-signature verifier takes. */
export function certificatePem(base64Der: string): string {
  const lines = base64Der.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** One string holding one or several PEM certificates (a bundle), or one bare base64 certificate, split into its parts. */
export function splitCertificates(input: string): string[] {
  const pattern = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
  const blocks = input.match(pattern);
  // Anything besides the blocks makes the whole input one (invalid) certificate: nothing is silently dropped.
  if (!blocks || blocks.length === 0 || input.replace(pattern, '').trim() !== '') return [input];
  return blocks;
}
