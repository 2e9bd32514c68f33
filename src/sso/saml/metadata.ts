import { MAX_IDP_CERTIFICATES, normalizeCertificate } from './certificates.js';
import { attributeOf, children, isElement, NS, onlyChild, parseStrictXml, textOf, XmlRefused } from './xml.js';

export const HTTP_REDIRECT_BINDING = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';

/** What the service takes from an IdP's metadata. */
export interface IdpMetadata {
  entityId: string;
  /** SingleSignOnService with the HTTP-Redirect binding (saml-bindings §3.4). */
  ssoUrl: string;
  /** Every signing certificate (base64 DER), in document order: all are trusted, for key rollover. */
  certificates: string[];
}

export type MetadataOutcome = { kind: 'ok'; metadata: IdpMetadata } | { kind: 'invalid'; message: string };

/**
 * Parse uploaded IdP metadata (SAML metadata 2.0 §2.3.2 EntityDescriptor,
 * §2.4.3 IDPSSODescriptor) ourselves — node-saml has no parser:
 * - a DTD is refused (XXE, entity expansion), and so is anything not
 *   well-formed;
 * - the root is an EntityDescriptor, or an EntitiesDescriptor holding
 *   exactly one EntityDescriptor with an IDPSSODescriptor;
 * - the IDPSSODescriptor must support the SAML 2.0 protocol and have a
 *   SingleSignOnService with the HTTP-Redirect binding (the one we use);
 * - every KeyDescriptor with `use="signing"` or no `use` contributes its
 *   X509Certificate(s); at least one, at most {@link MAX_IDP_CERTIFICATES},
 *   each a parseable certificate.
 * The metadata's own signature is not checked: the admin uploading it over
 * an authenticated, fresh session is the trust anchor (metadata §3.1 allows
 * trust established out of band).
 */
export function parseIdpMetadata(xml: string): MetadataOutcome {
  let doc: Document;
  try {
    doc = parseStrictXml(xml);
  } catch (error) {
    if (error instanceof XmlRefused) return { kind: 'invalid', message: error.message };
    throw error;
  }
  const root = doc.documentElement;
  let entity: Element | null = null;
  if (isElement(root, NS.metadata, 'EntityDescriptor')) entity = root;
  else if (isElement(root, NS.metadata, 'EntitiesDescriptor')) {
    const idps = children(root, NS.metadata, 'EntityDescriptor').filter((e) => children(e, NS.metadata, 'IDPSSODescriptor').length > 0);
    if (idps.length !== 1) return { kind: 'invalid', message: 'an EntitiesDescriptor must hold exactly one identity provider' };
    entity = idps[0] ?? null;
  }
  if (!entity) return { kind: 'invalid', message: 'the root element must be an md:EntityDescriptor' };

  const entityId = (attributeOf(entity, 'entityID') ?? '').trim();
  if (entityId === '' || entityId.length > 1024) return { kind: 'invalid', message: 'the EntityDescriptor has no usable entityID' };

  const descriptor = onlyChild(entity, NS.metadata, 'IDPSSODescriptor');
  if (descriptor === null) return { kind: 'invalid', message: 'no IDPSSODescriptor: this is not identity provider metadata' };
  if (descriptor === 'many') return { kind: 'invalid', message: 'more than one IDPSSODescriptor' };
  const protocols = (attributeOf(descriptor, 'protocolSupportEnumeration') ?? '').split(/\s+/);
  if (!protocols.includes(NS.protocol)) return { kind: 'invalid', message: 'the IDPSSODescriptor does not support SAML 2.0' };

  const redirect = children(descriptor, NS.metadata, 'SingleSignOnService').find((s) => attributeOf(s, 'Binding') === HTTP_REDIRECT_BINDING);
  const ssoUrl = redirect ? (attributeOf(redirect, 'Location') ?? '').trim() : '';
  if (ssoUrl === '') return { kind: 'invalid', message: 'no SingleSignOnService with the HTTP-Redirect binding' };

  const certificates: string[] = [];
  for (const key of children(descriptor, NS.metadata, 'KeyDescriptor')) {
    const use = attributeOf(key, 'use');
    if (use !== null && use !== 'signing') continue;
    const keyInfo = onlyChild(key, NS.dsig, 'KeyInfo');
    if (keyInfo === null || keyInfo === 'many') return { kind: 'invalid', message: 'a KeyDescriptor must hold one ds:KeyInfo' };
    for (const data of children(keyInfo, NS.dsig, 'X509Data')) {
      for (const element of children(data, NS.dsig, 'X509Certificate')) {
        const certificate = normalizeCertificate(textOf(element));
        if (certificate === null) return { kind: 'invalid', message: 'a signing certificate is not a valid X.509 certificate' };
        if (!certificates.includes(certificate)) certificates.push(certificate);
      }
    }
  }
  if (certificates.length === 0) return { kind: 'invalid', message: 'no signing certificate (KeyDescriptor use="signing" with an X509Certificate)' };
  if (certificates.length > MAX_IDP_CERTIFICATES) return { kind: 'invalid', message: `more than ${MAX_IDP_CERTIFICATES} signing certificates` };
  return { kind: 'ok', metadata: { entityId, ssoUrl, certificates } };
}
