/**
 * `tsfig image save|load` and `tsfig container export|commit`: image archives (docker save / OCI layout), a
 * container's filesystem as a tar, and a container's changes as a new image.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { loadImages, saveImages, type ArchiveFormat } from '../../../engine/images/index.js';
import { commitContainer, exportContainer } from '../../../engine/images/index.js';
import { ImageStore } from '../../../engine/images/index.js';
import { enginePaths } from '../../../engine/state/index.js';
import { TsfigError } from '../../errors.js';
import { openEngine } from '../engine.js';
import { collect } from '../units.js';

/** The command group named name, made when absent. */
function group(program: Command, name: string, description: string): Command {
  return program.commands.find((command) => command.name() === name) ?? program.command(name).description(description);
}

function parseFormat(value: string | undefined): ArchiveFormat {
  if (value === undefined || value === 'docker') return 'docker';
  if (value === 'oci') return 'oci';
  throw new TsfigError('usage', `invalid --format "${value}"`, { hint: 'use docker or oci' });
}

/**
 * Runs write against FILE (written next to it, then renamed into place, so a failure leaves no half file) or
 * stdout, which must not be a terminal.
 */
export async function writeBinary(
  file: string | undefined,
  what: string,
  write: (out: Writable) => Promise<void>,
): Promise<void> {
  if (file === undefined || file === '-') {
    if (process.stdout.isTTY) {
      throw new TsfigError('usage', `refusing to write ${what} to a terminal`, {
        hint: 'give -o FILE or redirect the output (> FILE, | ...)',
      });
    }
    await write(process.stdout);
    if (process.stdout.writableNeedDrain) await once(process.stdout, 'drain');
    return;
  }
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  const out = createWriteStream(tmp, { mode: 0o644 });
  let failure: Error | undefined;
  out.on('error', (error) => (failure ??= error));
  try {
    await once(out, 'open');
    await write(out);
    out.end();
    await once(out, 'close');
    if (failure !== undefined) throw failure;
    await rename(tmp, file);
  } catch (error) {
    out.destroy();
    await rm(tmp, { force: true });
    throw error;
  }
}

/** Adds `image save|load` to the image group and `export|commit` to the container group. */
export function registerArchiveCommands(program: Command): void {
  const image = group(program, 'image', 'manage images');
  const store = (): ImageStore => new ImageStore(enginePaths());

  image
    .command('save')
    .description('save images to a tar archive (docker save format, or an OCI image layout with --format oci)')
    .argument('<images...>', 'IMAGE[:TAG] or id')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .option('--format <format>', 'docker (docker save, with the OCI layout Docker 25+ adds) or oci', 'docker')
    .action(async (refs: string[], flags: { output?: string; format?: string }) => {
      const format = parseFormat(flags.format);
      const images = store();
      for (const ref of refs) await images.resolve(ref); // a missing image fails before anything is written
      await writeBinary(flags.output, 'an image archive', (out) =>
        saveImages(images, refs, out, {
          format,
          onWarning: (message) => process.stderr.write(`warning: ${message}\n`),
        }),
      );
    });

  image
    .command('load')
    .description('load images from a tar archive (docker save or OCI layout; plain or gzip)')
    .option('-i, --input <file>', 'read from a file instead of stdin')
    .option('-q, --quiet', 'print nothing')
    .action(async (flags: { input?: string; quiet?: boolean }) => {
      let input: AsyncIterable<Uint8Array>;
      if (flags.input !== undefined && flags.input !== '-') input = createReadStream(flags.input);
      else {
        if (process.stdin.isTTY) {
          throw new TsfigError('usage', 'requested load from stdin, but stdin is a terminal', {
            hint: 'give -i FILE or pipe an archive in (tsfig image load < FILE)',
          });
        }
        input = process.stdin;
      }
      const loaded = await loadImages(store(), input);
      if (flags.quiet === true) return;
      for (const entry of loaded) {
        if (entry.tags.length === 0) process.stdout.write(`Loaded image ID: ${entry.id}\n`);
        for (const tag of entry.tags) process.stdout.write(`Loaded image: ${tag}\n`);
      }
    });

  const container = group(program, 'container', 'manage containers');

  container
    .command('export')
    .description("export a container's filesystem as a tar archive")
    .argument('<container>')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .action(async (ref: string, flags: { output?: string }) => {
      const engine = await openEngine();
      await engine.containers.get(ref); // a missing container fails before anything is written
      await writeBinary(flags.output, 'a tar archive', (out) => exportContainer(engine, ref, out));
    });

  container
    .command('commit')
    .description("create a new image from a container's changes")
    .argument('<container>')
    .argument('[reference]', 'REPOSITORY[:TAG]')
    .option('-a, --author <author>', 'author (e.g. "Jane Doe <jane@example.com>")')
    .option('-c, --change <instruction>', 'apply a Dockerfile instruction to the image (repeatable)', collect)
    .option('-m, --message <message>', 'commit message')
    .action(
      async (
        ref: string,
        reference: string | undefined,
        flags: { author?: string; change?: string[]; message?: string },
      ) => {
        const engine = await openEngine();
        const record = await commitContainer(engine, ref, {
          reference,
          changes: flags.change ?? [],
          message: flags.message,
          author: flags.author,
        });
        process.stdout.write(`${record.id}\n`);
      },
    );
}
