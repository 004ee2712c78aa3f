/**
 * Registry commands: `tsfig image pull|push`, `tsfig login`, `tsfig logout` (Docker's output and flags).
 * Insecure registries: TSFIG_INSECURE_REGISTRIES=host:port,...; extra CA: TSFIG_REGISTRY_CA=ca.pem (or
 * NODE_EXTRA_CA_CERTS); credentials: $DOCKER_CONFIG/config.json (~/.docker/config.json).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ImageStore } from '../../../engine/images/index.js';
import {
  CredentialStore,
  login,
  logout,
  normalizeServer,
  pullImage,
  pushImage,
  registryClientFromEnv,
  type PullEvent,
  type PushEvent,
} from '../../../engine/registry/index.js';
import { familiarReference, parseReference } from '../../../engine/images/index.js';
import { enginePaths } from '../../../engine/state/index.js';
import type { EnginePaths } from '../../../engine/state/index.js';
import { TsfigError } from '../../errors.js';
import { interruptible } from '../interrupt.js';

export interface RegistryCommandIo {
  /** @default enginePaths() (TSFIG_ROOT) */
  readonly paths?: () => EnginePaths;
  readonly stdout?: { write(text: string): unknown };
  readonly stderr?: { write(text: string): unknown };
  /** Reads --password-stdin. @default fd 0 */
  readonly readStdin?: () => string;
  readonly env?: NodeJS.ProcessEnv;
}

function short(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

/** Docker's per-layer lines of a pull, one line per state change (no bytes: they are for interactive renderers). */
export function pullLine(event: PullEvent): string | undefined {
  if (event.type !== 'layer') return undefined;
  switch (event.status) {
    case 'exists':
      return `${short(event.digest)}: Already exists`;
    case 'verified':
      return `${short(event.digest)}: Download complete`;
    case 'done':
      return `${short(event.digest)}: Pull complete`;
    case 'waiting':
    case 'downloading':
    case 'extracting':
      return undefined;
  }
}

export function pushLine(event: PushEvent): string | undefined {
  if (event.type !== 'layer') return undefined;
  switch (event.status) {
    case 'exists':
      return `${short(event.digest)}: Layer already exists`;
    case 'mounted':
      return `${short(event.digest)}: Mounted from another repository`;
    case 'pushed':
      return `${short(event.digest)}: Pushed`;
    case 'preparing':
    case 'pushing':
      return undefined;
  }
}

function megabytes(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)}MB` : `${(bytes / 1e3).toFixed(1)}kB`;
}

/** Docker's `Downloading [=====>     ]  12.3MB/55.1MB`. */
export function progressBar(current: number, total: number, width = 40): string {
  const filled = total > 0 ? Math.min(width, Math.floor((current / total) * width)) : 0;
  const bar = `${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(width - filled)}`;
  return `[${bar}]  ${megabytes(current)}/${megabytes(total)}`;
}

/**
 * A terminal renderer of pull events: one line per layer, redrawn in place (cursor up) as bytes arrive.
 */
export class PullProgress {
  private readonly order: string[] = [];
  private readonly lines = new Map<string, string>();
  private drawn = 0;
  private last = 0;

  private readonly write: (text: string) => unknown;

  constructor(write: (text: string) => unknown) {
    this.write = write;
  }

  update(event: PullEvent): void {
    if (event.type !== 'layer') return;
    const id = short(event.digest);
    if (!this.lines.has(id)) this.order.push(id);
    const text =
      event.status === 'downloading'
        ? `Downloading ${progressBar(event.current ?? 0, event.total ?? 0)}`
        : (
            {
              exists: 'Already exists',
              waiting: 'Waiting',
              verified: 'Download complete',
              extracting: 'Extracting',
              done: 'Pull complete',
            } as const
          )[event.status];
    this.lines.set(id, `${id}: ${text}`);
    const now = Date.now();
    if (event.status === 'downloading' && now - this.last < 100) return;
    this.last = now;
    this.draw();
  }

  draw(): void {
    let text = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const id of this.order) text += `\x1b[2K${this.lines.get(id) ?? ''}\n`;
    this.drawn = this.order.length;
    this.write(text);
  }
}

/** Adds `image pull`, `image push`, `login` and `logout`. */
export function registerRegistryCommands(program: Command, io: RegistryCommandIo = {}): void {
  const paths = io.paths ?? (() => enginePaths(undefined, io.env ?? process.env));
  const out = (text: string): unknown => (io.stdout ?? process.stdout).write(text);
  const env = io.env ?? process.env;
  const image =
    program.commands.find((command) => command.name() === 'image') ??
    program.command('image').description('manage images');

  image
    .command('pull')
    .description('download an image from a registry')
    .argument('<reference>', 'NAME[:TAG|@DIGEST]')
    .option(
      '--platform <os/arch[/variant]>',
      'platform to pull from a multi-platform image (default: linux/<this machine>)',
    )
    .option('-q, --quiet', 'print only the image reference')
    .action(async (reference: string, flags: { platform?: string; quiet?: boolean }) => {
      const ref = parseReference(reference);
      const shown = familiarReference(ref.digest === undefined ? { ...ref, tag: ref.tag ?? 'latest' } : ref);
      const client = registryClientFromEnv(env);
      try {
        if (flags.quiet !== true) {
          if (ref.tag === undefined && ref.digest === undefined) out('Using default tag: latest\n');
          out(`${ref.digest ?? ref.tag ?? 'latest'}: Pulling from ${ref.path}\n`);
        }
        const tty = io.stdout === undefined && process.stdout.isTTY;
        const progress = tty ? new PullProgress(out) : undefined;
        // Ctrl-C / SIGTERM: the downloads stop and their temp files go, then 130 / 143
        const result = await interruptible(
          {
            what: `the pull of ${shown}`,
            hint: `pull again to finish: tsfig image pull ${reference} (the layers already unpacked are kept)`,
          },
          (signal) =>
            pullImage(client, new ImageStore(paths()), reference, {
              platform: flags.platform,
              signal,
              onEvent: (event) => {
                if (flags.quiet === true) return;
                if (progress !== undefined) {
                  progress.update(event);
                  return;
                }
                const line = pullLine(event);
                if (line !== undefined) out(`${line}\n`);
              },
            }),
        );
        progress?.draw();
        if (flags.quiet !== true) {
          out(`Digest: ${result.digest}\n`);
          out(
            result.downloaded
              ? `Status: Downloaded newer image for ${shown}\n`
              : `Status: Image is up to date for ${shown}\n`,
          );
        }
        out(`${shown}\n`);
      } finally {
        client.close();
      }
    });

  image
    .command('push')
    .description('upload an image to a registry')
    .argument('<reference>', 'NAME[:TAG]')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--format <docker|oci>', 'manifest format', 'docker')
    .action(async (reference: string, flags: { quiet?: boolean; format: string }) => {
      if (flags.format !== 'docker' && flags.format !== 'oci') {
        throw new TsfigError('usage', `invalid --format "${flags.format}"`, { hint: 'use docker or oci' });
      }
      const ref = parseReference(reference);
      const client = registryClientFromEnv(env);
      try {
        if (flags.quiet !== true)
          out(`The push refers to repository [${familiarReference({ ...ref, tag: undefined, digest: undefined })}]\n`);
        const result = await pushImage(client, new ImageStore(paths()), reference, {
          format: flags.format,
          onEvent: (event) => {
            if (flags.quiet === true) return;
            const line = pushLine(event);
            if (line !== undefined) out(`${line}\n`);
          },
        });
        if (flags.quiet !== true) out(`${ref.tag ?? 'latest'}: digest: ${result.digest} size: ${result.size}\n`);
      } finally {
        client.close();
      }
    });

  program
    .command('login')
    .description('log in to a registry (credentials go to ~/.docker/config.json or its credential helper)')
    .argument('[server]', 'registry host[:port] (default: Docker Hub)')
    .option('-u, --username <name>', 'username')
    .option('-p, --password <password>', 'password (prefer --password-stdin)')
    .option('--password-stdin', 'take the password from stdin')
    .action(
      async (server: string | undefined, flags: { username?: string; password?: string; passwordStdin?: boolean }) => {
        if (flags.password !== undefined && flags.passwordStdin === true) {
          throw new TsfigError('usage', '--password and --password-stdin are mutually exclusive');
        }
        if (flags.username === undefined || flags.username === '') {
          throw new TsfigError('usage', 'login needs a username', {
            hint: 'tsfig login -u USER --password-stdin SERVER',
          });
        }
        let password = flags.password;
        if (flags.passwordStdin === true) {
          password = (io.readStdin ?? (() => readFileSync(0, 'utf8')))().replace(/\r?\n$/, '');
        }
        if (password === undefined || password === '') {
          throw new TsfigError('usage', 'login needs a password', {
            hint: 'pipe it in: echo "$PASSWORD" | tsfig login -u USER --password-stdin SERVER',
          });
        }
        if (flags.password !== undefined) {
          (io.stderr ?? process.stderr).write(
            'WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n',
          );
        }
        const client = registryClientFromEnv(env);
        try {
          await login(client, new CredentialStore({ env }), normalizeServer(server), {
            username: flags.username,
            password,
          });
        } finally {
          client.close();
        }
        out('Login Succeeded\n');
      },
    );

  program
    .command('logout')
    .description('log out from a registry')
    .argument('[server]', 'registry host[:port] (default: Docker Hub)')
    .action(async (server: string | undefined) => {
      const domain = normalizeServer(server);
      const removed = await logout(new CredentialStore({ env }), domain);
      out(removed ? `Removing login credentials for ${domain}\n` : `Not logged in to ${domain}\n`);
    });
}
