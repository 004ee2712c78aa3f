/**
 * `tsfig kube generate`: the project as Kubernetes manifests (src/kube/generate.ts).
 * `tsfig kube play FILE... [--down]`: Kubernetes YAML run on tsfig's engine (src/kube/play.ts): the objects become
 * a compose project, run as `up -d` runs one (src/compose/up.ts `convergeLocked`: the image plan, then the container
 * plan) or removed by `planDown`, under the project lock.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { LineCounter, parseAllDocuments, stringify } from 'yaml';
import { ConfigError, formatDiagnostics } from '../../config/diagnostics.js';
import { loadProject } from '../../config/load.js';
import { TsfigError } from '../../errors.js';
import { generate, kubeName, type ServiceType } from '../../kube/generate.js';
import type { KubeObject } from '../../kube/objects.js';
import { translate, type SourceObject } from '../../kube/play.js';
import { positionIndex } from '../../kube/positions.js';
import { renderFiles, renderStream } from '../../kube/render.js';
import { KUBERNETES_VERSION, validateObjects } from '../../kube/validate.js';
import { planDown } from '../../planner/reconcile.js';
import { applyPlan, printPlan } from '../../compose/apply.js';
import { convergeLocked } from '../../compose/up.js';
import { loadForServices, projectOptions, verbContext } from '../compose/context.js';
import { openEngine } from '../engine.js';
import { addProjectOptions } from '../global-options.js';

interface GenerateFlags {
  readonly output: string;
  readonly namespace?: string;
  readonly serviceType: ServiceType;
  readonly pvc?: boolean;
  readonly allowHostpath?: boolean;
  readonly volumeSize: string;
  readonly waitImage?: string;
  readonly kubectlImage?: string;
  readonly validate?: boolean;
}

export function registerKubeCommands(program: Command): void {
  const kube = program
    .command('kube')
    .description('Kubernetes: generate manifests from the project, or play manifests');
  const gen = kube
    .command('generate')
    .description("write Kubernetes manifests for the project's services")
    .argument('[services...]', 'only these services (default: every enabled service)')
    .option('-o, --output <dir|->', 'directory to write one file per object into, or - for stdout', '-')
    .option('-n, --namespace <ns>', "namespace of every object (default: none, kubectl's current one)")
    .addOption(
      new Option('--service-type <type>', 'type of the <service>-published Services for published ports')
        .choices(['ClusterIP', 'NodePort', 'LoadBalancer'])
        .default('LoadBalancer'),
    )
    .option(
      '--pvc',
      'named volumes as shared PersistentVolumeClaims (Deployments) instead of StatefulSet claim templates',
    )
    .option('--allow-hostpath', 'bind mounts as hostPath volumes (the files must exist on the node)')
    .option('--volume-size <quantity>', 'storage each claim requests', '1Gi')
    .option('--wait-image <image>', 'image of the init containers that wait for a dependency (needs sh, nc, nslookup)')
    .option('--kubectl-image <image>', 'image of the init containers that wait for a Job (needs kubectl)')
    .option('--validate', `check every object against the Kubernetes ${KUBERNETES_VERSION} OpenAPI schema`);
  addProjectOptions(gen);
  gen.action(async (services: string[], _flags: GenerateFlags, command: Command) => {
    await runGenerate(command, services, command.opts<GenerateFlags>());
  });
  kube
    .command('play')
    .description('run the Pods, Deployments, StatefulSets, Jobs, Services, ConfigMaps, Secrets and PVCs of YAML files')
    .argument('<file...>', 'Kubernetes YAML files (- for stdin)')
    .option('--down', 'stop and remove what a play of the same files created (containers, networks, volumes)')
    .option('--dry-run', 'print the plan and change nothing')
    .option(
      '-p, --project-name <name>',
      "project name (default: the objects' app.kubernetes.io/part-of, else the first file's name)",
    )
    .action(async (files: string[], flags: PlayFlags, command: Command) => {
      await runPlay(command, files, flags);
    });
}

interface PlayFlags {
  readonly down?: boolean;
  readonly dryRun?: boolean;
  readonly projectName?: string;
}

/** Reads the YAML documents of `files`; a syntax error is a config error at its file:line:col. */
function readSources(files: readonly string[]): SourceObject[] {
  const out: SourceObject[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new TsfigError(
        code === 'ENOENT' ? 'not-found' : code === 'EACCES' ? 'permission' : 'usage',
        `${file}: ${(error as Error).message}`,
      );
    }
    const lines = new LineCounter();
    for (const doc of parseAllDocuments(text, { lineCounter: lines, version: '1.1' })) {
      const problem = doc.errors[0];
      if (problem !== undefined) {
        const at = lines.linePos(problem.pos[0]);
        throw new TsfigError('config', `${file}:${at.line}:${at.col}: ${problem.message.split('\n')[0] ?? ''}`);
      }
      const value: unknown = doc.toJS();
      if (value === null || value === undefined) continue;
      const line = lines.linePos(doc.contents?.range[0] ?? 0).line;
      if (typeof value !== 'object' || Array.isArray(value) || typeof (value as { kind?: unknown }).kind !== 'string')
        throw new TsfigError('config', `${file}:${line}:1: not a Kubernetes object (no kind)`);
      const object = value as Record<string, unknown>;
      const items =
        object.kind === 'List' && Array.isArray(object.items) ? (object.items as Record<string, unknown>[]) : [object];
      for (const item of items) out.push({ object: item, file, line });
    }
  }
  return out;
}

/** The project name of a play: -p, else the workloads' app.kubernetes.io/part-of, else the first file's name. */
function playProjectName(files: readonly string[], sources: readonly SourceObject[], flag: string | undefined): string {
  if (flag !== undefined) return flag;
  const partOf = new Set(
    sources
      .map(
        (s) =>
          (s.object.metadata as { labels?: Record<string, string> } | undefined)?.labels?.['app.kubernetes.io/part-of'],
      )
      .filter((v): v is string => v !== undefined),
  );
  if (partOf.size === 1) return [...partOf][0] ?? 'kube';
  const first = files[0] === undefined || files[0] === '-' ? 'kube' : path.basename(files[0]).replace(/\.[^.]*$/, '');
  return kubeName(first);
}

async function runPlay(command: Command, files: readonly string[], flags: PlayFlags): Promise<void> {
  const sources = readSources(files);
  const problems = await validateObjects(
    sources
      .filter((s) =>
        ['Pod', 'Deployment', 'StatefulSet', 'Job', 'Service', 'ConfigMap', 'Secret', 'PersistentVolumeClaim'].includes(
          String(s.object.kind),
        ),
      )
      .map((s) => s.object as unknown as KubeObject),
  );
  if (problems.length > 0)
    throw new TsfigError(
      'config',
      `objects do not match the Kubernetes ${KUBERNETES_VERSION} schema:\n${problems.map((p) => `  ${p.object}: ${p.messages.join('; ')}`).join('\n')}`,
    );
  const name = playProjectName(files, sources, flags.projectName ?? projectOptions(command).projectName);
  const engine = await openEngine();
  const ctx = await verbContext(command, undefined, engine);
  const dir = path.join(engine.paths.root, 'kube', kubeName(name));
  const result = translate(sources, path.join(dir, 'files'));
  // through the event sink: with --progress json they are JSON too
  for (const warning of result.warnings) ctx.events.emit({ kind: 'warning', message: warning });
  await ctx.port.lockProject(kubeName(name), async () => {
    // The compose document is written under the state root, so `--down` (and tsfig -p NAME ps/logs) find it.
    // A dry run writes the document to a temporary directory instead, and removes it.
    const docDir = flags.dryRun === true ? mkdtempSync(path.join(tmpdir(), 'tsfig-kube-')) : dir;
    if (flags.dryRun !== true) {
      mkdirSync(path.join(engine.paths.root, 'kube'), { recursive: true, mode: 0o700 });
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    const composeFile = path.join(docDir, 'compose.yaml');
    writeFileSync(
      composeFile,
      stringify({ name: kubeName(name), ...result.compose }, { version: '1.1', lineWidth: 0 }),
    );
    let loaded;
    try {
      loaded = loadProject({ files: [composeFile], cwd: docDir, env: {}, interpolate: false });
    } finally {
      if (flags.dryRun === true) rmSync(docDir, { recursive: true, force: true });
    }
    const { project } = loaded;
    if (flags.down === true) {
      const thePlan = planDown(project, await ctx.port.observe(project), { volumes: true });
      if (flags.dryRun === true) {
        printPlan(ctx, thePlan);
        return;
      }
      await ctx.port.repair();
      await applyPlan(ctx, thePlan);
      rmSync(dir, { recursive: true, force: true });
      return;
    }
    if (flags.dryRun !== true) {
      rmSync(path.join(dir, 'files'), { recursive: true, force: true });
      for (const [file, { content, mode }] of result.files) {
        const target = path.join(dir, 'files', file);
        mkdirSync(path.dirname(target), { recursive: true, mode: 0o755 });
        writeFileSync(target, content, { mode });
        chmodSync(target, mode);
      }
    }
    // as `up -d`: the image plan (planImages: the pulls the pull policies ask for), then the container plan
    await convergeLocked(ctx, { project, services: [], plan: {}, detach: true, dryRun: flags.dryRun === true });
  });
}

async function runGenerate(command: Command, services: readonly string[], flags: GenerateFlags): Promise<void> {
  if (!/^(\d+(\.\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/.test(flags.volumeSize))
    throw new TsfigError('usage', `--volume-size: "${flags.volumeSize}" is not a Kubernetes quantity`, {
      hint: 'for example 1Gi or 500Mi',
    });
  if (flags.namespace !== undefined && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(flags.namespace))
    throw new TsfigError('usage', `--namespace: "${flags.namespace}" is not a valid namespace name`);
  const load = loadForServices(command, services);
  const project = load.project;
  const positions = positionIndex(project.config_files);
  const result = generate(project, {
    services,
    ...(flags.namespace !== undefined ? { namespace: flags.namespace } : {}),
    serviceType: flags.serviceType,
    pvc: flags.pvc === true,
    allowHostpath: flags.allowHostpath === true,
    volumeSize: flags.volumeSize,
    ...(flags.waitImage !== undefined ? { waitImage: flags.waitImage } : {}),
    ...(flags.kubectlImage !== undefined ? { kubectlImage: flags.kubectlImage } : {}),
    readFile: (file) => readFileSync(file),
    env: process.env,
    positions,
  });
  const sources = new Map([...load.sources, ...positions.sources]);
  if (result.diagnostics.some((d) => d.severity === 'error')) throw new ConfigError(result.diagnostics, sources);
  const warnings = result.diagnostics.filter((d) => d.severity === 'warning');
  if (warnings.length > 0) process.stderr.write(`${formatDiagnostics(warnings, sources, process.cwd())}\n`);
  if (flags.validate === true) {
    const problems = await validateObjects(result.objects);
    if (problems.length > 0)
      throw new TsfigError(
        'internal',
        `generated objects do not match the Kubernetes ${KUBERNETES_VERSION} schema:\n${problems
          .map((p) => `  ${p.object}: ${p.messages.join('; ')}`)
          .join('\n')}`,
        { hint: 'this is a bug in tsfig kube generate: please report it with the project file' },
      );
    process.stderr.write(`${result.objects.length} objects match the Kubernetes ${KUBERNETES_VERSION} schema\n`);
  }
  if (flags.output === '-') {
    process.stdout.write(renderStream(result.objects));
    return;
  }
  const dir = path.resolve(flags.output);
  try {
    mkdirSync(dir, { recursive: true });
    for (const [file, text] of renderFiles(result.objects)) writeFileSync(path.join(dir, file), text);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new TsfigError(
      code === 'EACCES' || code === 'EPERM' ? 'permission' : 'usage',
      `--output ${flags.output}: ${(error as Error).message}`,
    );
  }
  process.stderr.write(`${result.objects.length} objects written to ${dir}\n`);
}
