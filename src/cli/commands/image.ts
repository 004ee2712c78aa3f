import { inspectFormatter } from '../go-template.js';
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { sweepBuildDebris } from '../../../engine/build/index.js';
import { ContainerManager } from '../../../engine/containers/index.js';
import {
  containerImageUsers,
  ImageStore,
  type ImageRecord,
  type ImportSource,
  type RemoveAction,
} from '../../../engine/images/index.js';
import type { EnginePaths } from '../../../engine/state/index.js';
import { enginePaths } from '../../../engine/state/index.js';
import { TsfigError } from '../../errors.js';
import { humanDuration, humanSize, renderTable } from '../table.js';
import { collect } from '../units.js';

/** Where the image commands read and write; tests pass their own. */
export interface ImageCommandIo {
  /** @default enginePaths() (TSFIG_ROOT) */
  readonly paths?: () => EnginePaths;
  /** @default process.stdout */
  readonly stdout?: { write(text: string): unknown };
  /** @default process.stderr */
  readonly stderr?: { write(text: string): unknown };
  /** @default process.stdin */
  readonly stdin?: NodeJS.ReadableStream;
  /** @default Date.now */
  readonly now?: () => number;
}

/** `busybox:latest` → [`busybox`, `latest`]; the tag follows the last `:` after the last `/`. */
function splitTag(repoTag: string): [string, string] {
  const colon = repoTag.lastIndexOf(':');
  if (colon <= repoTag.lastIndexOf('/')) return [repoTag, '<none>'];
  return [repoTag.slice(0, colon), repoTag.slice(colon + 1)];
}

export interface ImageRow {
  Repository: string;
  Tag: string;
  ID: string;
  CreatedAt: string;
  CreatedSince: string;
  Size: string;
}

/** One row per tag (or one `<none>` row for an untagged image), as `docker image ls`. */
export { humanDuration, humanSize };

export function imageRows(images: readonly ImageRecord[], now: number, noTrunc = false): ImageRow[] {
  const rows: ImageRow[] = [];
  for (const image of images) {
    const id = noTrunc ? image.id : image.id.replace(/^sha256:/, '').slice(0, 12);
    const createdMs = Date.parse(image.created);
    const since = Number.isNaN(createdMs) ? 'N/A' : `${humanDuration(Math.max(0, now - createdMs))} ago`;
    const tags = image.repoTags.length > 0 ? image.repoTags : ['<none>:<none>'];
    for (const repoTag of tags) {
      const [repository, tag] = repoTag === '<none>:<none>' ? ['<none>', '<none>'] : splitTag(repoTag);
      rows.push({
        Repository: repository,
        Tag: tag,
        ID: id,
        CreatedAt: image.created,
        CreatedSince: since,
        Size: humanSize(image.size),
      });
    }
  }
  return rows;
}

export function renderImageTable(rows: readonly ImageRow[]): string {
  return renderTable(
    ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'],
    rows.map((row) => [row.Repository, row.Tag, row.ID, row.CreatedSince, row.Size]),
  );
}

function renderRemoveAction(action: RemoveAction): string {
  return action.kind === 'untagged' ? `Untagged: ${action.ref}\n` : `Deleted: ${action.id}\n`;
}

async function importSource(arg: string, stdin: NodeJS.ReadableStream): Promise<ImportSource> {
  if (arg === '-') return { kind: 'stream', stream: stdin };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(arg)) {
    throw new TsfigError('usage', `cannot import from a URL (${arg}): tsfig never downloads during import`, {
      hint: 'download the tarball first, then: tsfig image import FILE',
    });
  }
  const info = await stat(arg).catch(() => undefined);
  return info?.isDirectory() === true ? { kind: 'dir', path: arg } : { kind: 'file', path: arg };
}

/** Adds `tsfig image import|ls|rm|inspect|tag|prune`. */
export function registerImageCommands(program: Command, io: ImageCommandIo = {}): void {
  const paths = io.paths ?? (() => enginePaths());
  const out = (text: string): unknown => (io.stdout ?? process.stdout).write(text);
  const now = io.now ?? Date.now;
  const store = (): ImageStore => new ImageStore(paths());
  const image = program.command('image').description('manage images');

  image
    .command('import')
    .description('create an image from a root filesystem: a tar file (plain or gzip), a directory, or - (stdin)')
    .argument('<source>', 'FILE|DIR|-')
    .argument('[reference]', 'REPOSITORY[:TAG] to tag the new image with')
    .option('-c, --change <instruction>', 'apply a Dockerfile instruction to the image config (repeatable)', collect)
    .option('-m, --message <text>', 'commit message for the image history')
    .action(async (source: string, reference: string | undefined, options: { change?: string[]; message?: string }) => {
      const record = await store().importRootfs(await importSource(source, io.stdin ?? process.stdin), {
        reference,
        changes: options.change ?? [],
        message: options.message,
      });
      out(`${record.id}\n`);
    });

  image
    .command('ls')
    .alias('list')
    .description('list images')
    .option('-q, --quiet', 'only show image ids')
    .option('--no-trunc', 'do not truncate ids')
    .option('--format <format>', 'table or json (one JSON object per line)', 'table')
    .action(async (options: { quiet?: boolean; trunc: boolean; format: string }) => {
      if (options.format !== 'table' && options.format !== 'json') {
        throw new TsfigError('usage', `unknown --format "${options.format}"`, { hint: 'use --format table or json' });
      }
      const images = await store().list();
      if (options.quiet === true) {
        const ids = images.map((record) => (options.trunc ? record.id.slice(7, 19) : record.id));
        out(ids.map((id) => `${id}\n`).join(''));
        return;
      }
      const rows = imageRows(images, now(), !options.trunc);
      if (options.format === 'json') out(rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
      else out(renderImageTable(rows));
    });

  image
    .command('rm')
    .alias('remove')
    .alias('rmi')
    .description('remove images (untag; delete when no tag remains)')
    .argument('<images...>', 'NAME[:TAG] or image id')
    .option('-f, --force', 'remove even when several tags name it; untag an image containers use')
    .action(async (refs: string[], options: { force?: boolean }) => {
      const imageStore = store();
      const isInUse = containerImageUsers(imageStore.paths);
      for (const ref of refs) {
        const actions = await imageStore.remove(ref, { force: options.force ?? false, isInUse });
        out(actions.map(renderRemoveAction).join(''));
      }
    });

  image
    .command('inspect')
    .description('show images as JSON')
    .argument('<images...>', 'NAME[:TAG] or image id')
    .option('-f, --format <format>', "json (default), or a Go template as docker's (e.g. '{{.Id}}')")
    .action(async (refs: string[], flags: { format?: string }) => {
      const format = inspectFormatter(flags.format);
      const imageStore = store();
      const result = [];
      for (const ref of refs) result.push(await imageStore.inspect(ref));
      out(format(result));
    });

  image
    .command('tag')
    .description('add a tag to an image')
    .argument('<source>', 'NAME[:TAG] or image id')
    .argument('<target>', 'NAME[:TAG]')
    .action(async (source: string, target: string) => {
      await store().tag(source, target);
    });

  image
    .command('prune')
    .description('remove dangling images (no tag, unused)')
    .option('-f, --force', 'do not ask for confirmation')
    .action(async (options: { force?: boolean }) => {
      if (options.force !== true) {
        throw new TsfigError('usage', 'image prune removes every dangling image and needs -f', {
          hint: 'run: tsfig image prune -f',
        });
      }
      const imageStore = store();
      // RUN containers of builds killed outright hold their step's image: they go first
      const debris = await sweepBuildDebris({
        paths: imageStore.paths,
        containers: new ContainerManager(imageStore.paths, imageStore),
      });
      if (debris.containers.length > 0) {
        (io.stderr ?? process.stderr).write(`${debris.containers.length} container(s) of interrupted builds removed\n`);
      }
      const deleted = await imageStore.prune({ isInUse: containerImageUsers(imageStore.paths) });
      out(deleted.map((id) => `Deleted: ${id}\n`).join(''));
      (io.stderr ?? process.stderr).write(`${deleted.length} dangling image(s) removed\n`);
    });
}
