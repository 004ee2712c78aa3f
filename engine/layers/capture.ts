/**
 * A RUN step's change as a layer: the container's overlay upper dir written as a tar with Docker's whiteouts
 * (overlay's 0:0 character device → `.wh.NAME`, `trusted.overlay.opaque=y`, rootless `user.overlay.opaque=y`, →
 * `.wh..wh..opq`), overlay's own xattrs
 * dropped, and the mount stubs the runtime made (empty `/etc/hosts`...) left out. GNU tar reads the dir
 * (packDirectory) because it reads xattrs, hard links and devices, which Node cannot; entries are sorted so the same
 * change gives the same DiffID.
 */
import { promises as fs } from 'node:fs';
import { EngineError } from '../errors.js';
import { packDirectory } from './pack.js';
import { overlayXattrPrefix } from '../system/rootless.js';
import { encodeEntry, encodeHeader, endOfArchive, padding, readTar, type TarEntry } from './tar.js';
import { toContainerIds, type IdRange } from './ids.js';

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
 * (it is left out). ids: the container's user namespace, whose host ids the upper dir holds (the layer gets the
 * container's).
 */
export async function* upperDirLayer(
  upper: string,
  isStub: (entry: TarEntry) => boolean,
  ids?: IdRange,
): AsyncGenerator<Buffer> {
  for await (const read of readTar(packDirectory(upper))) {
    const raw = ids === undefined ? read : { ...read, ...toContainerIds(read, ids) };
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

/**
 * A tar stream of ready entries (COPY/ADD layers). An entry with `file` has its content read from that host file as
 * the stream is consumed, never held whole in memory; a file that became shorter than its planned size is an error.
 */
export async function* entriesLayer(entries: Iterable<TarEntry> | AsyncIterable<TarEntry>): AsyncGenerator<Buffer> {
  for await (const entry of entries) {
    if (entry.file === undefined || entry.type !== 'file') {
      yield encodeEntry(entry);
      continue;
    }
    const { path: file, size } = entry.file;
    yield encodeHeader(entry, size);
    let left = size;
    const handle = await fs.open(file, 'r');
    try {
      while (left > 0) {
        const chunk = Buffer.allocUnsafe(Math.min(left, 1 << 20));
        const { bytesRead } = await handle.read(chunk, 0, chunk.length, size - left);
        if (bytesRead === 0) {
          throw new EngineError('runtime', `${file} changed while it was added: it is shorter than ${size} bytes`);
        }
        left -= bytesRead;
        yield chunk.subarray(0, bytesRead);
      }
    } finally {
      await handle.close();
    }
    yield padding(size);
  }
  yield endOfArchive();
}
