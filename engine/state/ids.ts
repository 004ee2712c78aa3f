import { randomBytes } from 'node:crypto';

/** A new 64-hex object id, as Docker's. */
export function newId(): string {
  return randomBytes(32).toString('hex');
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}
