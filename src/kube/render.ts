/** Kubernetes objects → YAML: one multi-document stream, or one file per object. */
import { stringify } from 'yaml';
import type { KubeObject } from './objects.js';

function documentOf(object: KubeObject): string {
  return stringify(object, { lineWidth: 0, aliasDuplicateObjects: false, version: '1.1' });
}

/** A `---`-separated stream, in the objects' order. */
export function renderStream(objects: readonly KubeObject[]): string {
  return objects.map((object) => `---\n${documentOf(object)}`).join('');
}

/** `<name>-<kind>.yaml` → document, as kompose names its files. */
export function renderFiles(objects: readonly KubeObject[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const object of objects) {
    const file = `${object.metadata?.name ?? 'object'}-${object.kind.toLowerCase()}.yaml`;
    out.set(file, documentOf(object));
  }
  return out;
}
