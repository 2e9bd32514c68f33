import { DOMParser } from '@xmldom/xmldom';

/**
 * Strict XML reading for SAML (the only importer of @xmldom/xmldom; node-saml
 * brings the same copy, ≥ 0.8.15 per SECURITY.md "SAML SP").
 *
 * - A document type declaration is refused before parsing (XXE and entity
 *   expansion, "billion laughs": OWASP XXE Prevention Cheat Sheet; SAML
 *   messages and metadata never need a DTD — SAML core §1.3, metadata §2).
 * - Every parser warning or error is fatal: a message that is not
 *   well-formed is not "repaired" into something else.
 * - Elements are read by namespace and local name, one level at a time,
 *   never by a document-wide search: where an element sits is part of its
 *   meaning (XML signature wrapping moves elements elsewhere).
 */

export const NS = {
  protocol: 'urn:oasis:names:tc:SAML:2.0:protocol',
  assertion: 'urn:oasis:names:tc:SAML:2.0:assertion',
  metadata: 'urn:oasis:names:tc:SAML:2.0:metadata',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
} as const;

/** The XML could not be accepted; `reason` is a stable code, `message` safe to show (no input echoed). */
export class XmlRefused extends Error {
  constructor(
    readonly reason: 'doctype_refused' | 'xml_malformed',
    message: string,
  ) {
    super(message);
    this.name = 'XmlRefused';
  }
}

/** Any DTD or entity declaration, wherever it is (case-insensitive, so no spelling slips through). */
export function hasDoctype(xml: string): boolean {
  return /<!\s*(DOCTYPE|ENTITY)/i.test(xml);
}

/** Parse `xml`, refusing DTDs and anything a strict parser would complain about. */
export function parseStrictXml(xml: string): Document {
  if (hasDoctype(xml)) throw new XmlRefused('doctype_refused', 'a document type declaration (DTD) is not allowed');
  const problems: string[] = [];
  const record = (level: string) => (message: string): void => {
    problems.push(`${level}: ${String(message).split('\n')[0]?.slice(0, 120) ?? ''}`);
  };
  let doc: Document;
  try {
    doc = new DOMParser({
      locator: {},
      errorHandler: { warning: record('warning'), error: record('error'), fatalError: record('fatal') },
    }).parseFromString(xml, 'text/xml') as unknown as Document;
  } catch {
    throw new XmlRefused('xml_malformed', 'the XML is not well-formed');
  }
  if (problems.length > 0 || !doc || !doc.documentElement) throw new XmlRefused('xml_malformed', 'the XML is not well-formed');
  if (doc.doctype) throw new XmlRefused('doctype_refused', 'a document type declaration (DTD) is not allowed');
  // Exactly one root element, nothing but comments, whitespace and processing instructions beside it.
  let roots = 0;
  for (let node = doc.firstChild; node; node = node.nextSibling) {
    if (node.nodeType === ELEMENT_NODE) roots += 1;
    else if (node.nodeType === TEXT_NODE && (node.nodeValue ?? '').trim() !== '') roots += 2;
  }
  if (roots !== 1) throw new XmlRefused('xml_malformed', 'the XML must have exactly one root element');
  return doc;
}

const ELEMENT_NODE = 1;
const TEXT_NODE = 3;
const CDATA_SECTION_NODE = 4;

export function isElement(node: Node | null | undefined, ns: string, localName: string): node is Element {
  return !!node && node.nodeType === ELEMENT_NODE && (node as Element).namespaceURI === ns && (node as Element).localName === localName;
}

/** Direct children of `parent` with this namespace and local name, in document order. */
export function children(parent: Element, ns: string, localName: string): Element[] {
  const out: Element[] = [];
  for (let node = parent.firstChild; node; node = node.nextSibling) if (isElement(node, ns, localName)) out.push(node);
  return out;
}

/** The single direct child with this name; null when there is none; `many` when there are several. */
export function onlyChild(parent: Element, ns: string, localName: string): Element | null | 'many' {
  const found = children(parent, ns, localName);
  if (found.length > 1) return 'many';
  return found[0] ?? null;
}

/** Every element below `root` (itself included) with this name, wherever it is: for counting, never for reading. */
export function countDescendants(root: Element, ns: string, localName: string): number {
  let count = isElement(root, ns, localName) ? 1 : 0;
  for (let node = root.firstChild; node; node = node.nextSibling) {
    if (node.nodeType === ELEMENT_NODE) count += countDescendants(node as Element, ns, localName);
  }
  return count;
}

/**
 * Every element below `root` (itself included) with this local name, in ANY
 * namespace: for checks that must hold wherever a library might look
 * (xml-crypto selects `SignatureMethod` and `DigestMethod` by local name),
 * never for reading a value.
 */
export function descendantsByLocalName(root: Element, localName: string, out: Element[] = []): Element[] {
  if (root.localName === localName) out.push(root);
  for (let node = root.firstChild; node; node = node.nextSibling) {
    if (node.nodeType === ELEMENT_NODE) descendantsByLocalName(node as Element, localName, out);
  }
  return out;
}

/** Every value of attribute `name` (no namespace) on `root` and below. */
export function attributeValues(root: Element, name: string, out: string[] = []): string[] {
  if (root.hasAttribute(name)) out.push(root.getAttribute(name) ?? '');
  for (let node = root.firstChild; node; node = node.nextSibling) {
    if (node.nodeType === ELEMENT_NODE) attributeValues(node as Element, name, out);
  }
  return out;
}

/**
 * The element's whole text: every text and CDATA node below it, joined.
 * Comments are skipped, not treated as the end of the value — so
 * `admin@acme.test<!---->.evil.test` reads as `admin@acme.test.evil.test`,
 * the value the IdP signed (CVE-2017-11428 class, comment injection).
 */
export function textOf(element: Element): string {
  let text = '';
  for (let node = element.firstChild; node; node = node.nextSibling) {
    if (node.nodeType === TEXT_NODE || node.nodeType === CDATA_SECTION_NODE) text += node.nodeValue ?? '';
    else if (node.nodeType === ELEMENT_NODE) text += textOf(node as Element);
  }
  return text;
}

/** An attribute's value, or null when absent (xmldom answers '' for a missing attribute). */
export function attributeOf(element: Element, name: string): string | null {
  return element.hasAttribute(name) ? element.getAttribute(name) : null;
}
