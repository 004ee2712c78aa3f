/**
 * An OCI distribution client: HTTPS by default (plain HTTP only for loopback hosts or registries listed as insecure),
 * the `WWW-Authenticate` Bearer token flow (anonymous or with credentials, tokens cached per registry and scope) and
 * Basic auth, redirects that never carry `Authorization` to another host, and retries with back-off.
 */
import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
import { EngineError } from '../errors.js';
import { CredentialStore, parseWwwAuthenticate, type Challenge, type Credentials } from './auth.js';

export interface RegistryClientOptions {
  /**
   * Refuse every registry (and token server) that is not on a loopback address, before any name lookup: what the
   * test suite sets (TSFIG_REGISTRY_LOOPBACK_ONLY=1) so nothing it does leaves the machine. @default false
   */
  loopbackOnly?: boolean;
  /** Registries (host[:port]) reachable over plain HTTP besides loopback ones (Docker's `insecure-registries`). */
  insecureRegistries?: readonly string[] | undefined;
  /** Extra trusted CA certificates (PEM), added to Node's roots. */
  ca?: string | readonly string[] | undefined;
  credentials?: CredentialStore | undefined;
  /** Attempts per request on transient failures. @default 4 */
  attempts?: number | undefined;
  /** First back-off delay in ms (doubles each retry). @default 200 */
  backoffMs?: number | undefined;
  userAgent?: string | undefined;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Body factory: called again on each attempt. */
  body?: (() => Buffer | Readable) | undefined;
  /** Access wanted: `pull` or `pull,push`; extra scopes (cross-repository mounts) may be added. */
  actions?: string;
  extraScopes?: readonly string[];
  /** Statuses the caller handles itself (others become errors). */
  ok?: readonly number[];
  /** What the request is for, in errors (`pulling localhost:5000/app:1`). */
  what: string;
  /** Do not retry (the body cannot be sent again). */
  once?: boolean;
}

export interface RegistryResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: IncomingMessage;
  url: URL;
  text(): Promise<string>;
  bytes(limit?: number): Promise<Buffer>;
}

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED', 'EAI_AGAIN', 'UND_ERR_SOCKET']);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const TLS_PROTOCOL = /wrong version number|EPROTO|packet length too long|unknown protocol|http request/i;

/** Docker Hub's API host for docker.io. */
export function apiHost(domain: string): string {
  return domain === 'docker.io' ? 'registry-1.docker.io' : domain;
}

/** localhost, 127.0.0.0/8 and ::1 (with any port). */
export function isLoopback(domain: string): boolean {
  const host = domain.replace(/:[0-9]+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

async function readAll(stream: Readable, limit = 64 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      stream.destroy();
      throw new EngineError('invalid', `the registry's answer is larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface CachedToken {
  token: string;
  expires: number;
}

/** The registry's error message from a JSON error body (`{"errors":[{"code","message"}]}`). */
export function registryErrorMessage(body: string): string | undefined {
  try {
    const json = JSON.parse(body) as { errors?: Array<{ code?: string; message?: string }> };
    const first = json.errors?.[0];
    if (first === undefined) return undefined;
    return [first.code, first.message].filter(Boolean).join(': ');
  } catch {
    return undefined;
  }
}

export class RegistryClient {
  private readonly loopbackOnly: boolean;
  private readonly insecure: Set<string>;
  private readonly credentials: CredentialStore;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly userAgent: string;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly schemes = new Map<string, Promise<'https' | 'http'>>();
  private readonly tokens = new Map<string, CachedToken>();
  private readonly challenges = new Map<string, Challenge>();
  private readonly creds = new Map<string, Promise<Credentials | undefined>>();

  constructor(options: RegistryClientOptions = {}) {
    this.loopbackOnly = options.loopbackOnly ?? process.env.TSFIG_REGISTRY_LOOPBACK_ONLY === '1';
    this.insecure = new Set(options.insecureRegistries ?? []);
    this.credentials = options.credentials ?? new CredentialStore();
    this.attempts = options.attempts ?? 4;
    this.backoffMs = options.backoffMs ?? 200;
    this.userAgent = options.userAgent ?? 'tsfig';
    const extra = options.ca === undefined ? [] : typeof options.ca === 'string' ? [options.ca] : [...options.ca];
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    this.httpsAgent = new https.Agent({
      keepAlive: true,
      maxSockets: 16,
      ...(extra.length > 0 ? { ca: [...tls.rootCertificates, ...extra] } : {}),
    });
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** Whether plain HTTP may be used for domain. */
  allowsHttp(domain: string): boolean {
    return isLoopback(domain) || this.insecure.has(domain);
  }

  /** Credentials stored for domain (memoised for the client's life). */
  credentialsFor(domain: string): Promise<Credentials | undefined> {
    let found = this.creds.get(domain);
    if (found === undefined) {
      found = this.credentials.get(domain);
      this.creds.set(domain, found);
    }
    return found;
  }

  /** Overrides the credentials of domain (login checks them before storing). */
  useCredentials(domain: string, creds: Credentials | undefined): void {
    this.creds.set(domain, Promise.resolve(creds));
    for (const key of [...this.tokens.keys()]) if (key.startsWith(`${domain}|`)) this.tokens.delete(key);
  }

  /** One HTTP exchange, no auth, no retries; redirects are followed without Authorization across hosts. */
  private send(
    url: URL,
    method: string,
    headers: Record<string, string>,
    body: Buffer | Readable | undefined,
    redirects = 0,
  ): Promise<{ res: IncomingMessage; url: URL }> {
    return new Promise((resolve, reject) => {
      const isHttps = url.protocol === 'https:';
      const request = (isHttps ? https : http).request(
        url,
        {
          method,
          headers: { 'User-Agent': this.userAgent, ...headers },
          agent: isHttps ? this.httpsAgent : this.httpAgent,
        },
        (res) => {
          const status = res.statusCode ?? 0;
          const location = res.headers.location;
          if (
            [301, 302, 303, 307, 308].includes(status) &&
            location !== undefined &&
            (method === 'GET' || method === 'HEAD')
          ) {
            res.resume();
            if (redirects >= 10) {
              reject(new EngineError('runtime', `too many redirects from ${url.host}`));
              return;
            }
            const next = new URL(location, url);
            const nextHeaders = { ...headers };
            // [SEC] credentials are for the registry only: never sent to a CDN or any other origin
            if (next.origin !== url.origin) delete nextHeaders.Authorization;
            this.send(next, method, nextHeaders, undefined, redirects + 1).then(resolve, reject);
            return;
          }
          resolve({ res, url });
        },
      );
      request.on('error', reject);
      request.setTimeout(60_000, () => request.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
      if (body === undefined) request.end();
      else if (Buffer.isBuffer(body)) request.end(body);
      else {
        body.on('error', (error) => request.destroy(error));
        body.pipe(request);
      }
    });
  }

  /** https, or http for an insecure registry that does not speak TLS (decided once per registry). */
  private scheme(domain: string): Promise<'https' | 'http'> {
    let known = this.schemes.get(domain);
    if (known === undefined) {
      known = (async () => {
        if (!this.allowsHttp(domain)) return 'https';
        try {
          const { res } = await this.send(new URL(`https://${apiHost(domain)}/v2/`), 'GET', {}, undefined);
          res.resume();
          return 'https';
        } catch (error) {
          const text = `${(error as { code?: string }).code ?? ''} ${(error as Error).message}`;
          if (TLS_PROTOCOL.test(text) || (error as { code?: string }).code === 'ECONNRESET') return 'http';
          throw error;
        }
      })();
      known.catch(() => this.schemes.delete(domain));
      this.schemes.set(domain, known);
    }
    return known;
  }

  private unreachable(domain: string, what: string, error: unknown): EngineError {
    const code = (error as { code?: string }).code ?? '';
    const reason = (error as Error).message;
    if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) {
      return new EngineError(
        'permission',
        `cannot verify the TLS certificate of registry ${domain} ${what}: ${reason}`,
        {
          hint: `trust its CA (NODE_EXTRA_CA_CERTS=ca.pem, or TSFIG_REGISTRY_CA), or list it as insecure (TSFIG_INSECURE_REGISTRIES=${domain}) to use plain HTTP`,
          cause: error,
        },
      );
    }
    return new EngineError('runtime', `registry ${domain} is unreachable ${what}: ${reason}`, {
      hint: 'check the network and the registry address; offline, get the image in without a registry: tsfig image import FILE NAME (a root filesystem tar), or build it: tsfig build (compose) / tsfig image build',
      cause: error,
    });
  }

  private scopeKey(domain: string, scopes: readonly string[]): string {
    return `${domain}|${[...scopes].sort().join(' ')}`;
  }

  /** A Bearer token for scopes from the challenge's realm (with credentials when stored). */
  private async fetchToken(
    domain: string,
    challenge: Challenge,
    scopes: readonly string[],
    what: string,
  ): Promise<string> {
    this.checkAllowed(new URL(challenge.params.realm ?? `https://${domain}`).host, what);
    const key = this.scopeKey(domain, scopes);
    const cached = this.tokens.get(key);
    if (cached !== undefined && cached.expires > Date.now()) return cached.token;
    const realm = challenge.params.realm;
    if (realm === undefined)
      throw new EngineError('runtime', `registry ${domain} sent a Bearer challenge without realm`);
    const url = new URL(realm);
    if (
      url.protocol !== 'https:' &&
      !(url.protocol === 'http:' && (isLoopback(url.host) || this.insecure.has(url.host)))
    ) {
      throw new EngineError('permission', `registry ${domain} asks for a token from ${url.origin} over plain HTTP`, {
        hint: `list ${url.host} as insecure (TSFIG_INSECURE_REGISTRIES) if you trust it`,
      });
    }
    const creds = await this.credentialsFor(domain);
    let res: IncomingMessage;
    const service = challenge.params.service;
    if (creds?.identityToken !== undefined) {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: creds.identityToken,
        client_id: 'tsfig',
      });
      if (service !== undefined) form.set('service', service);
      form.set('scope', scopes.join(' '));
      ({ res } = await this.send(
        url,
        'POST',
        { 'Content-Type': 'application/x-www-form-urlencoded' },
        Buffer.from(form.toString()),
      ));
    } else {
      if (service !== undefined) url.searchParams.set('service', service);
      for (const scope of scopes) url.searchParams.append('scope', scope);
      const headers: Record<string, string> = {};
      if (creds !== undefined) {
        headers.Authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
        url.searchParams.set('account', creds.username);
      }
      ({ res } = await this.send(url, 'GET', headers, undefined));
    }
    const body = (await readAll(res, 1024 * 1024)).toString('utf8');
    if (res.statusCode !== 200) {
      const detail = registryErrorMessage(body) ?? body.trim().slice(0, 200);
      throw new EngineError(
        res.statusCode === 401 || res.statusCode === 403 ? 'permission' : 'runtime',
        `cannot get a token from ${url.origin} for ${domain} ${what}: HTTP ${res.statusCode}${detail ? ` (${detail})` : ''}`,
        {
          hint:
            creds === undefined
              ? `log in first: tsfig login ${domain}`
              : `check your credentials: tsfig login ${domain}`,
        },
      );
    }
    let json: { token?: string; access_token?: string; expires_in?: number };
    try {
      json = JSON.parse(body) as typeof json;
    } catch {
      throw new EngineError('runtime', `the token server ${url.origin} answered something that is not JSON`);
    }
    const token = json.token ?? json.access_token;
    if (token === undefined || token === '')
      throw new EngineError('runtime', `the token server ${url.origin} sent no token`);
    const lifetime = Math.max(60, json.expires_in ?? 60) * 1000;
    this.tokens.set(key, { token, expires: Date.now() + lifetime - 10_000 });
    return token;
  }

  private async authorization(domain: string, scopes: readonly string[], what: string): Promise<string | undefined> {
    const challenge = this.challenges.get(domain);
    if (challenge === undefined) return undefined;
    if (challenge.scheme === 'bearer') return `Bearer ${await this.fetchToken(domain, challenge, scopes, what)}`;
    if (challenge.scheme === 'basic') {
      const creds = await this.credentialsFor(domain);
      if (creds === undefined) return undefined;
      return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    }
    return undefined;
  }

  /** The URL of a path under a registry's /v2/ (absolute upload locations are kept). */
  async url(domain: string, pathOrUrl: string): Promise<URL> {
    if (/^https?:\/\//.test(pathOrUrl)) return new URL(pathOrUrl);
    return new URL(`${await this.scheme(domain)}://${apiHost(domain)}${pathOrUrl}`);
  }

  /**
   * A request to the registry of domain for repository repo: authenticated on demand, retried with back-off on
   * transient failures (network errors, 429, 502-504), failing with an error naming the registry, what it was for
   * and the HTTP status.
   */
  /** With loopbackOnly, a registry or token server elsewhere is refused before anything is sent or looked up. */
  private checkAllowed(domain: string, what: string): void {
    if (!this.loopbackOnly || isLoopback(domain)) return;
    throw new EngineError(
      'runtime',
      `registry ${domain} is unreachable ${what}: only loopback registries are allowed`,
      {
        hint:
          'TSFIG_REGISTRY_LOOPBACK_ONLY=1 is set; offline, get the image in without a registry: tsfig image import ' +
          'FILE NAME, or build it: tsfig build',
      },
    );
  }

  async request(domain: string, repo: string, pathOrUrl: string, options: RequestOptions): Promise<RegistryResponse> {
    this.checkAllowed(domain, options.what);
    const method = options.method ?? 'GET';
    const scopes =
      repo === '' ? [] : [`repository:${repo}:${options.actions ?? 'pull'}`, ...(options.extraScopes ?? [])];
    const ok = options.ok ?? [200];
    let lastError: unknown;
    let authRetried = false;
    const attempts = options.once === true ? 1 : this.attempts;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await sleep(this.backoffMs * 2 ** (attempt - 1));
      let url: URL;
      let res: IncomingMessage;
      let finalUrl: URL;
      try {
        url = await this.url(domain, pathOrUrl);
        const headers: Record<string, string> = { ...(options.headers ?? {}) };
        const auth = await this.authorization(domain, scopes, options.what);
        if (auth !== undefined) headers.Authorization = auth;
        ({ res, url: finalUrl } = await this.send(url, method, headers, options.body?.()));
      } catch (error) {
        if (error instanceof EngineError) throw error;
        lastError = error;
        const code = (error as { code?: string }).code ?? '';
        if (UNREACHABLE_CODES.has(code) && attempt >= 1) break;
        if (TRANSIENT_CODES.has(code) || UNREACHABLE_CODES.has(code)) continue;
        break;
      }
      const status = res.statusCode ?? 0;
      if (status === 401 && !authRetried) {
        const header = res.headers['www-authenticate'];
        res.resume();
        const challenge = parseWwwAuthenticate(Array.isArray(header) ? header.join(', ') : (header ?? '')).find(
          (c) => c.scheme === 'bearer' || c.scheme === 'basic',
        );
        if (challenge !== undefined) {
          const previous = this.challenges.get(domain);
          this.challenges.set(domain, challenge);
          if (previous === undefined || previous.scheme !== challenge.scheme) {
            authRetried = true;
            attempt--;
            continue;
          }
          // the token was refused: a fresh one, once
          this.tokens.delete(this.scopeKey(domain, scopes));
          authRetried = true;
          attempt--;
          continue;
        }
      }
      if ((status === 429 || status === 502 || status === 503 || status === 504) && attempt < attempts - 1) {
        res.resume();
        const retryAfter = Number(res.headers['retry-after']);
        if (Number.isFinite(retryAfter) && retryAfter > 0) await sleep(Math.min(retryAfter, 10) * 1000);
        lastError = new Error(`HTTP ${status}`);
        continue;
      }
      const response: RegistryResponse = {
        status,
        headers: res.headers,
        body: res,
        url: finalUrl,
        text: async () => (await readAll(res)).toString('utf8'),
        bytes: (limit?: number) => readAll(res, limit),
      };
      if (ok.includes(status)) return response;
      const text = method === 'HEAD' ? '' : await response.text().catch(() => '');
      throw this.statusError(domain, options.what, status, text);
    }
    throw this.unreachable(domain, options.what, lastError);
  }

  statusError(domain: string, what: string, status: number, body: string): EngineError {
    const detail = registryErrorMessage(body);
    const message = `registry ${domain} answered HTTP ${status} ${what}${detail !== undefined ? `: ${detail}` : ''}`;
    if (status === 401 || status === 403) {
      return new EngineError('permission', message, {
        hint: `log in with: tsfig login ${domain} (or check that the repository exists and you may access it)`,
      });
    }
    if (status === 404) {
      return new EngineError('not-found', message, { hint: 'check the name and tag (or digest) of the image' });
    }
    return new EngineError('runtime', message, {
      hint: 'try again later; the registry may be overloaded or misconfigured',
    });
  }
}
