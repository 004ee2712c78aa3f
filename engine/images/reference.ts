import { EngineError } from '../errors.js';

/**
 * Image references, following Docker's grammar (distribution/reference):
 *
 *     reference  := name [ ":" tag ] [ "@" digest ]
 *     name       := [domain "/"] path-component ["/" path-component]*
 *     domain     := host [":" port]
 *     path-component := [a-z0-9]+ (separator [a-z0-9]+)*   separator := [_.] | "__" | "-"+
 *     tag        := [\w][\w.-]{0,127}
 *     digest     := algorithm ":" hex (sha256: 64 lowercase hex)
 *
 * Names are normalised as Docker does: a first component without `.`, `:` and not `localhost` is not a domain, so the
 * name lives on docker.io, and a docker.io name with a single component gets `library/`. Internally names are kept in
 * full (`docker.io/library/busybox:latest`); people see the familiar form (`busybox:latest`).
 */
export interface ImageReference {
  /** Registry host, with port if any. @default docker.io */
  readonly domain: string;
  /** Repository path below the domain, e.g. `library/busybox`. */
  readonly path: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
}

export const DEFAULT_DOMAIN = 'docker.io';
export const DEFAULT_TAG = 'latest';
const LEGACY_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';
const NAME_MAX = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const SHA256_DIGEST = /^sha256:[0-9a-f]{64}$/;
const HEX64 = /^[0-9a-f]{64}$/;

function invalid(input: string, rule: string): EngineError {
  return new EngineError('invalid', `invalid reference "${input}": ${rule}`, {
    hint: 'a reference is NAME[:TAG][@DIGEST], e.g. busybox, busybox:1.36, registry.local:5000/team/app:v2',
  });
}

function validDomain(domain: string): boolean {
  let host = domain;
  const portMatch = /^(.*):([0-9]+)$/.exec(domain);
  if (portMatch !== null) host = portMatch[1] ?? '';
  if (/^\[[0-9a-fA-F:.]+\]$/.test(host)) return true; // IPv6 literal
  return host !== '' && host.split('.').every((part) => DOMAIN_COMPONENT.test(part));
}

/** Splits `name` into domain and path as Docker does (splitDockerDomain). */
function splitDomain(name: string): { domain: string; path: string } {
  const slash = name.indexOf('/');
  const first = slash === -1 ? '' : name.slice(0, slash);
  let domain: string;
  let remainder: string;
  if (
    slash === -1 ||
    (!first.includes('.') && !first.includes(':') && first !== 'localhost' && first.toLowerCase() === first)
  ) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = first;
    remainder = name.slice(slash + 1);
  }
  if (domain === LEGACY_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_PREFIX + remainder;
  return { domain, path: remainder };
}

/** Parses and normalises a reference; throws an `invalid` EngineError naming the rule broken. */
export function parseReference(input: string): ImageReference {
  if (input === '') throw invalid(input, 'it is empty');
  if (input.trim() !== input || /\s/.test(input)) throw invalid(input, 'it contains whitespace');
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(input, `digest "${digest}" is not ALGORITHM:HEX (e.g. sha256:<64 hex>)`);
    if (digest.startsWith('sha256:') && !SHA256_DIGEST.test(digest)) {
      throw invalid(input, `a sha256 digest has exactly 64 lowercase hex characters`);
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      throw invalid(input, `tag "${tag}" must be 1-128 of [A-Za-z0-9_.-] and not start with "." or "-"`);
    }
  }
  const name = rest;
  if (name === '') throw invalid(input, 'the repository name is empty');
  if (HEX64.test(name)) throw invalid(input, 'a repository name cannot be a 64-character hexadecimal string');
  const { domain, path } = splitDomain(name);
  if (domain.length + 1 + path.length > NAME_MAX) {
    throw invalid(input, `the full repository name is longer than ${NAME_MAX} characters`);
  }
  if (!validDomain(domain)) throw invalid(input, `"${domain}" is not a valid registry host[:port]`);
  for (const component of path.split('/')) {
    if (component === '') throw invalid(input, 'the repository path has an empty component');
    if (component.toLowerCase() !== component) throw invalid(input, 'the repository name must be lowercase');
    if (!PATH_COMPONENT.test(component)) {
      throw invalid(
        input,
        `path component "${component}" must be lowercase letters and digits separated by ".", "_", "__" or "-"`,
      );
    }
  }
  return { domain, path, tag, digest };
}

/** Parses a reference to tag an image with: no digest allowed, `latest` when no tag is given. */
export function parseTagReference(input: string): ImageReference {
  const ref = parseReference(input);
  if (ref.digest !== undefined) {
    throw new EngineError('invalid', `invalid tag "${input}": a tag cannot contain a digest`, {
      hint: 'use NAME[:TAG], e.g. myapp:v1',
    });
  }
  return { ...ref, tag: ref.tag ?? DEFAULT_TAG };
}

/** `docker.io/library/busybox` */
export function fullName(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** `busybox` for `docker.io/library/busybox`, `user/app` for `docker.io/user/app`, others unchanged. */
export function familiarName(ref: ImageReference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return fullName(ref);
  return ref.path.startsWith(OFFICIAL_PREFIX) ? ref.path.slice(OFFICIAL_PREFIX.length) : ref.path;
}

function suffix(ref: ImageReference): string {
  return `${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** Full form, as stored: `docker.io/library/busybox:latest`. */
export function formatReference(ref: ImageReference): string {
  return `${fullName(ref)}${suffix(ref)}`;
}

/** Familiar form, as shown: `busybox:latest`. */
export function familiarReference(ref: ImageReference): string {
  return `${familiarName(ref)}${suffix(ref)}`;
}

/** `docker.io/library/busybox:latest` → `busybox:latest` (for stored keys, which are always valid). */
export function familiarize(stored: string): string {
  return familiarReference(parseReference(stored));
}
