/**
 * A RUN step's change as a layer: the container's overlay upper dir written as a tar with Docker's whiteouts
 * (overlay's 0:0 character device → `.wh.NAME`, `trusted.overlay.opaque=y`, rootless `user.overlay.opaque=y`, →
 * `.wh..wh..opq`), overlay's own xattrs
 * dropped, and the mount stubs the runtime made (empty `/etc/hosts`...) left out. GNU tar reads the dir
 * (packDirectory) because it reads xattrs, hard links and devices, which Node cannot; entries are sorted so the same
 * change gives the same DiffID.
 */
import { packDirectory } from './pack.js';
import { overlayXattrPrefix } from '../system/rootless.js';
import { encodeEntry, endOfArchive, readTar, type TarEntry } from './tar.js';

/** Overlay's own xattrs (under `prefix`: trusted.overlay., or user.overlay. rootless) out, opacity noted. */
export function withoutOverlayXattrs(
  entry: TarEntry,
  prefix: string = overlayXattrPrefix(),
): { entry: TarEntry; opaque: boolean } {
  const xattrs = entry.xattrs;
  if (xattrs === undefined) return { entry, opaque: false };
  const opaque = xattrs[`${prefix}opaque`]?.toString() === 'y';
  const kept = Object.fromEntries(
    Object.entries(xattrs).filter(([key]) => !key.startsWith('trusted.overlay.') && !key.startsWith(prefix)),
  );
  const { xattrs: _dropped, ...rest } = entry;
  return { entry: Object.keys(kept).length > 0 ? { ...rest, xattrs: kept } : rest, opaque };
}

function whiteoutName(name: string, base: string): string {
  const slash = name.lastIndexOf('/');
  return slash < 0 ? base : `${name.slice(0, slash)}/${base}`;
}

/**
 * The layer tar of an upper dir. isStub(name, entry) says whether an entry is a mount point the runtime created
 * (it is left out).
 */
export async function* upperDirLayer(upper: string, isStub: (entry: TarEntry) => boolean): AsyncGenerator<Buffer> {
  for await (const raw of readTar(packDirectory(upper))) {
    if (raw.name === '' || raw.name === '.') continue;
    if (isStub(raw)) continue;
    if (raw.type === 'char' && raw.devmajor === 0 && raw.devminor === 0) {
      const base = raw.name.split('/').at(-1) ?? raw.name;
      yield encodeEntry({
        name: whiteoutName(raw.name, `.wh.${base}`),
        type: 'file',
        mode: 0o600,
        uid: 0,
        gid: 0,
        mtime: raw.mtime,
      });
      continue;
    }
    const { entry, opaque } = withoutOverlayXattrs(raw);
    yield encodeEntry(entry);
    if (opaque && entry.type === 'dir') {
      yield encodeEntry({ name: `${entry.name}/.wh..wh..opq`, type: 'file', mode: 0o600, uid: 0, gid: 0, mtime: 0 });
    }
  }
  yield endOfArchive();
}

/** A tar stream of ready entries (COPY/ADD layers). */
export async function* entriesLayer(entries: Iterable<TarEntry> | AsyncIterable<TarEntry>): AsyncGenerator<Buffer> {
  for await (const entry of entries) yield encodeEntry(entry);
  yield endOfArchive();
}
