/**
 * `tsfig kube generate`: the project as Kubernetes manifests (src/kube/generate.ts).
 * `tsfig kube play FILE... [--down]`: Kubernetes YAML run on tsfig's engine (src/kube/play.ts).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { ConfigError, formatDiagnostics } from '../../config/diagnostics.js';
import { TsfigError } from '../../errors.js';
import { generate, type ServiceType } from '../../kube/generate.js';
import { positionIndex } from '../../kube/positions.js';
import { renderFiles, renderStream } from '../../kube/render.js';
import { KUBERNETES_VERSION, validateObjects } from '../../kube/validate.js';
import { loadForServices } from '../compose/context.js';
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
