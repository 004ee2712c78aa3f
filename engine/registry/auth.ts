/**
 * Registry authentication: `WWW-Authenticate` challenges, and credentials in Docker's `~/.docker/config.json` format
 * (`auths` with base64 `user:password`, `credsStore`, `credHelpers` run as `docker-credential-<name> get|store|erase`).
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EngineError, isErrno } from '../errors.js';

export interface Challenge {
  /** Lowercase scheme: `bearer`, `basic`. */
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` header value (RFC 7235): one or more challenges, each a scheme and comma-separated
 * `key=value` / `key="quoted \" value"` parameters.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipSpaces = (): void => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  while (i < n) {
    skipSpaces();
    while (i < n && header[i] === ',') {
      i++;
      skipSpaces();
    }
    const schemeStart = i;
    while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(header[i] ?? '')) i++;
    if (i === schemeStart) break;
    const challenge: Challenge = { scheme: header.slice(schemeStart, i).toLowerCase(), params: {} };
    challenges.push(challenge);
    for (;;) {
      skipSpaces();
      const keyStart = i;
      while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(header[i] ?? '')) i++;
      const key = header.slice(keyStart, i).toLowerCase();
      skipSpaces();
      if (key === '' || header[i] !== '=') {
        // a token68 or the next challenge's scheme: rewind to it
        i = keyStart;
        if (key !== '' && header[i] !== ',') {
          // next challenge starts here unless it is the first thing after the scheme (token68, ignored)
          if (Object.keys(challenge.params).length === 0) {
            while (i < n && header[i] !== ',') i++;
          }
        }
        break;
      }
      i++; // '='
      skipSpaces();
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++; // closing quote
      } else {
        const valueStart = i;
        while (i < n && header[i] !== ',' && header[i] !== ' ') i++;
        value = header.slice(valueStart, i);
      }
      challenge.params[key] = value;
      skipSpaces();
      if (header[i] === ',') {
        i++;
        continue;
      }
      break;
    }
  }
  return challenges;
}

export interface Credentials {
  username: string;
  password: string;
  /** An OAuth refresh token (config.json `identitytoken`, or a helper's `<token>` user). */
  identityToken?: string | undefined;
}

export interface DockerConfigFile {
  auths?: Record<string, { auth?: string; identitytoken?: string; username?: string; password?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

/** Docker Hub's key in config.json. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG ?? path.join(env.HOME ?? os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

/** The config.json key of a registry: docker.io is Docker Hub's legacy URL, others are host[:port]. */
export function authKey(domain: string): string {
  return domain === 'docker.io' || domain === 'index.docker.io' || domain === 'registry-1.docker.io'
    ? DOCKER_HUB_AUTH_KEY
    : domain;
}

/** host[:port] of a config.json key (`https://host:5000/v1/` → `host:5000`). */
export function keyHost(key: string): string {
  const stripped = key.replace(/^[a-z]+:\/\//i, '');
  return stripped.split('/')[0] ?? stripped;
}

export async function readDockerConfig(file: string): Promise<DockerConfigFile> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return {};
    throw error;
  }
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as DockerConfigFile;
  } catch (error) {
    throw new EngineError('invalid', `${file} is not valid JSON`, { hint: 'fix or remove the file', cause: error });
  }
}

export async function writeDockerConfig(file: string, config: DockerConfigFile): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600 });
  await fs.rename(tmp, file);
}

export function encodeAuth(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
}

export function decodeAuth(auth: string): { username: string; password: string } {
  const text = Buffer.from(auth, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) throw new EngineError('invalid', 'invalid auth entry in the docker config (no ":")');
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

function helperFor(config: DockerConfigFile, domain: string): string | undefined {
  const helpers = config.credHelpers ?? {};
  for (const [key, helper] of Object.entries(helpers)) if (keyHost(key) === keyHost(authKey(domain))) return helper;
  return config.credsStore || undefined;
}

/** Runs `docker-credential-<helper> <action>` with input on stdin; its stdout. */
export function runCredentialHelper(
  helper: string,
  action: 'get' | 'store' | 'erase',
  input: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${helper}`, [action], { stdio: ['pipe', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    child.once('error', (error) =>
      reject(
        new EngineError('not-found', `cannot run the credential helper docker-credential-${helper}: ${error.message}`, {
          hint: `install docker-credential-${helper} or remove it from ${dockerConfigPath(env)}`,
          cause: error,
        }),
      ),
    );
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/** Where the client finds credentials for a registry. */
export class CredentialStore {
  readonly file: string;
  private readonly env: NodeJS.ProcessEnv;

  constructor(options: { file?: string | undefined; env?: NodeJS.ProcessEnv | undefined } = {}) {
    this.env = options.env ?? process.env;
    this.file = options.file ?? dockerConfigPath(this.env);
  }

  /** The credentials for domain (host[:port]; docker.io for Docker Hub), undefined when none are stored. */
  async get(domain: string): Promise<Credentials | undefined> {
    const config = await readDockerConfig(this.file);
    const helper = helperFor(config, domain);
    if (helper !== undefined) {
      const result = await runCredentialHelper(helper, 'get', authKey(domain), this.env);
      if (result.code !== 0) {
        if (/credentials not found/i.test(result.stdout + result.stderr)) return undefined;
        throw new EngineError(
          'runtime',
          `docker-credential-${helper} get failed: ${result.stderr.trim() || result.stdout.trim()}`,
        );
      }
      const answer = JSON.parse(result.stdout) as { Username?: string; Secret?: string };
      if (answer.Username === undefined || answer.Secret === undefined) return undefined;
      if (answer.Username === '<token>') return { username: '', password: '', identityToken: answer.Secret };
      return { username: answer.Username, password: answer.Secret };
    }
    const auths = config.auths ?? {};
    const entry =
      auths[authKey(domain)] ?? Object.entries(auths).find(([key]) => keyHost(key) === keyHost(authKey(domain)))?.[1];
    if (entry === undefined) return undefined;
    let creds: Credentials | undefined;
    if (entry.auth !== undefined && entry.auth !== '') creds = decodeAuth(entry.auth);
    else if (entry.username !== undefined) creds = { username: entry.username, password: entry.password ?? '' };
    if (entry.identitytoken !== undefined && entry.identitytoken !== '') {
      return { username: creds?.username ?? '', password: '', identityToken: entry.identitytoken };
    }
    return creds;
  }

  /** Stores credentials (in the helper when one is configured for the registry, else base64 in auths). */
  async store(domain: string, creds: Credentials): Promise<void> {
    const config = await readDockerConfig(this.file);
    const helper = helperFor(config, domain);
    const key = authKey(domain);
    if (helper !== undefined) {
      const input = JSON.stringify({ ServerURL: key, Username: creds.username, Secret: creds.password });
      const result = await runCredentialHelper(helper, 'store', input, this.env);
      if (result.code !== 0) {
        throw new EngineError(
          'runtime',
          `docker-credential-${helper} store failed: ${result.stderr.trim() || result.stdout.trim()}`,
        );
      }
      if (config.auths?.[key] !== undefined) {
        config.auths[key] = {};
        await writeDockerConfig(this.file, config);
      }
      return;
    }
    config.auths = { ...(config.auths ?? {}), [key]: { auth: encodeAuth(creds.username, creds.password) } };
    await writeDockerConfig(this.file, config);
  }

  /** Removes credentials; false when there were none. */
  async erase(domain: string): Promise<boolean> {
    const config = await readDockerConfig(this.file);
    const helper = helperFor(config, domain);
    const key = authKey(domain);
    let removed = false;
    if (helper !== undefined) {
      const result = await runCredentialHelper(helper, 'erase', key, this.env);
      removed = result.code === 0;
    }
    const auths = config.auths ?? {};
    for (const k of Object.keys(auths)) {
      if (keyHost(k) === keyHost(key)) {
        delete auths[k];
        removed = true;
      }
    }
    if (config.auths !== undefined) await writeDockerConfig(this.file, config);
    return removed;
  }
}
