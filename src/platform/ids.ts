import { v7 as uuidv7 } from 'uuid';

/** Opaque, time-ordered identifier (UUIDv7, RFC 9562 §5.7). */
export function newId(): string {
  return uuidv7();
}
