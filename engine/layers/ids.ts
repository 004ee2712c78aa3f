/**
 * Owners across a container's user namespace (`userns: auto`). What the container writes lands in its upper dir (and
 * volumes) under host ids of its range, while its image's layers keep container ids (they are idmapped when mounted).
 * A commit, an export or a `cp` out shows the container's ids, as Docker does; a `cp` in writes host ids (into a
 * volume, whose files on disk carry the container's own ids, those).
 */
import { EngineError } from '../errors.js';
import { encodeHeader, endOfArchive, padding, tarEntries, entryOf, type TarEntry } from './tar.js';

/** A user namespace's range: container id n is host id `uid + n` (gid: `gid + n`) for n < size. */
export interface IdRange {
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
}

export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/** Host ids inside the range become the container's; others (the image's files, already container ids) stay. */
export function toContainerIds(owner: Owner, range: IdRange): Owner {
  const map = (id: number, start: number) => (id >= start && id < start + range.size ? id - start : id);
  return { uid: map(owner.uid, range.uid), gid: map(owner.gid, range.gid) };
}

/** Container ids that the range maps, as they are; an id it does not map cannot be written (Docker's "cannot be mapped"). */
export function checkMapped(owner: Owner, range: IdRange, what: string): Owner {
  for (const id of [owner.uid, owner.gid]) {
    if (!Number.isInteger(id) || id < 0 || id >= range.size) {
      throw new EngineError('invalid', `${what}: id ${id} cannot be mapped into the container's user namespace`, {
        hint: `the container's ids are 0 to ${range.size - 1}`,
      });
    }
  }
  return { uid: owner.uid, gid: owner.gid };
}

/** Container ids as host ids (checkMapped first). */
export function toHostIds(owner: Owner, range: IdRange, what: string): Owner {
  const own = checkMapped(owner, range, what);
  return { uid: own.uid + range.uid, gid: own.gid + range.gid };
}

/** A tar stream with each entry's owner as the container sees it; file content is streamed, never held whole. */
export async function* withContainerOwners(source: AsyncIterable<Uint8Array>, range: IdRange): AsyncGenerator<Buffer> {
  for await (const { header, data } of tarEntries(source)) {
    const entry: TarEntry | undefined = entryOf(header);
    if (entry === undefined) {
      for await (const _ of data); // a kind without a type here: skipped, as readTar does
      continue;
    }
    const owned = { ...entry, ...toContainerIds(entry, range) };
    if (entry.type !== 'file') {
      yield encodeHeader(owned, 0);
      continue;
    }
    yield encodeHeader(owned, header.size);
    for await (const chunk of data) yield chunk;
    yield padding(header.size);
  }
  yield endOfArchive();
}
