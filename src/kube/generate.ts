/**
 * `tsfig kube generate`: the normalised project → Kubernetes objects (pure: files a secret or config reads come
 * through `options.readFile`, variables through `options.env`).
 *
 * One workload per service (Deployment; StatefulSet with volumeClaimTemplates when it mounts named volumes; Job for a
 * one-shot service that others wait on with service_completed_successfully), a Service per service named after it
 * (headless when it has no ports, so the name still resolves), NetworkPolicies giving the isolation of the compose
 * networks. Every key that has no Kubernetes equivalent is a warning at the position the user wrote it; a service
 * that only has `build:` is an error (the cluster needs an image it can pull). docs/kubernetes.md has the table.
 */
import path from 'node:path';
import type { Diagnostic, Position } from '../config/diagnostics.js';
import type { Project, Service, ServiceSecret, ServiceVolume } from '../model/project.js';
import type {
  IConfigMap,
  IContainer,
  IContainerPort,
  INetworkPolicy,
  INetworkPolicyPeer,
  IPersistentVolumeClaim,
  IPodSpec,
  IPodTemplateSpec,
  IProbe,
  ISecret,
  ISecurityContext,
  IService,
  IServicePort,
  IVolume,
  IVolumeMount,
  KubeObject,
} from './objects.js';
import { KIND_ORDER } from './objects.js';
import type { KeyPath, PositionIndex } from './positions.js';

export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer';

export interface GenerateOptions {
  /** Services to convert (all enabled services when empty). */
  readonly services?: readonly string[];
  readonly namespace?: string;
  /** Type of the `<service>-published` Services that carry published ports. @default "LoadBalancer" */
  readonly serviceType?: ServiceType;
  /** Named volumes as one PersistentVolumeClaim each (shared) instead of StatefulSet volumeClaimTemplates. */
  readonly pvc?: boolean;
  /** Bind mounts as hostPath volumes instead of a warning. */
  readonly allowHostpath?: boolean;
  /** Size requested by each claim. @default "1Gi" */
  readonly volumeSize?: string;
  /** Image of the init containers that wait for a dependency's Service. @default "busybox:1.36" */
  readonly waitImage?: string;
  /** Image of the init containers that wait for a Job. @default "registry.k8s.io/kubectl:v1.33.0" */
  readonly kubectlImage?: string;
  /** Reads a secret's or config's `file:`. */
  readonly readFile?: (file: string) => Buffer;
  /** Variables for secrets and configs with `environment:`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly positions: PositionIndex;
}

export interface GenerateResult {
  readonly objects: readonly KubeObject[];
  /** Warnings (keys not carried over) and errors (the project cannot be converted); each with a position. */
  readonly diagnostics: readonly Diagnostic[];
}

/** Labels every generated object carries, and the ones pods are selected by. */
export const KubeLabel = {
  Name: 'app.kubernetes.io/name',
  PartOf: 'app.kubernetes.io/part-of',
  ManagedBy: 'app.kubernetes.io/managed-by',
  Component: 'app.kubernetes.io/component',
  /** Prefix of the pod labels that stand for the compose networks a service joins (`io.tsfig.network/<key>`). */
  NetworkPrefix: 'io.tsfig.network/',
} as const;

/** Annotations kube play reads back to restore what Kubernetes has no field for. */
export const KubeAnnotation = {
  /** On a pod template: the compose `depends_on` (JSON `{service: condition}`) that its wait init containers do. */
  DependsOn: 'io.tsfig.kube/depends-on',
  /** On a pod template: compose's service name when the Kubernetes name differs. */
  Service: 'io.tsfig.kube/service',
} as const;

/** Prefix of the init containers that wait for a dependency (kube play replaces them with depends_on). */
export const WAIT_PREFIX = 'wait-for-';

const DEFAULT_WAIT_IMAGE = 'busybox:1.36';
const DEFAULT_KUBECTL_IMAGE = 'registry.k8s.io/kubectl:v1.33.0';

/** A DNS-1035 label (`[a-z]([-a-z0-9]*[a-z0-9])?`, at most 63): what Service names must be. */
export function kubeName(name: string): string {
  let out = name
    .toLowerCase()
    .replace(/[._]/g, '-')
    .replace(/[^a-z0-9-]/g, '');
  if (!/^[a-z]/.test(out)) out = `s-${out}`;
  out = out.slice(0, 63).replace(/-+$/, '');
  return out === '' ? 's' : out;
}

class Context {
  readonly diagnostics: Diagnostic[] = [];
  readonly objects: KubeObject[] = [];
  readonly options: GenerateOptions;
  readonly project: Project;

  constructor(project: Project, options: GenerateOptions) {
    this.project = project;
    this.options = options;
  }

  at(path: KeyPath): Position {
    return this.options.positions.at(path);
  }

  warn(path: KeyPath, sentence: string, hint?: string): void {
    this.diagnostics.push({
      severity: 'warning',
      message: `${dotted(path)} ${sentence}`,
      position: this.at(path),
      hint,
    });
  }

  error(path: KeyPath, sentence: string, hint?: string): void {
    this.diagnostics.push({ severity: 'error', message: `${dotted(path)} ${sentence}`, position: this.at(path), hint });
  }

  metadata(name: string, labels: Record<string, string> = {}, annotations: Record<string, string> = {}) {
    return {
      name,
      ...(this.options.namespace !== undefined ? { namespace: this.options.namespace } : {}),
      labels: { ...this.commonLabels(), ...labels },
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    };
  }

  commonLabels(): Record<string, string> {
    return { [KubeLabel.PartOf]: kubeLabelValue(this.project.name), [KubeLabel.ManagedBy]: 'tsfig' };
  }
}

function dotted(path: KeyPath): string {
  return path.map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? part : `.${part}`)).join('');
}

function kubeLabelValue(value: string): string {
  return value
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/** Generates the objects for `project`; the result holds errors instead of throwing. */
export function generate(project: Project, options: GenerateOptions): GenerateResult {
  const ctx = new Context(project, options);
  const wanted = options.services !== undefined && options.services.length > 0 ? options.services : undefined;
  const services = Object.values(project.services)
    .filter((service) => wanted === undefined || wanted.includes(service.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const jobs = jobServices(project);
  const names = new Map<string, string>();
  for (const service of services) {
    const name = kubeName(service.name);
    const other = [...names].find(([, kube]) => kube === name)?.[0];
    if (other !== undefined)
      ctx.error(['services', service.name], `has the same Kubernetes name "${name}" as service "${other}"`);
    if (name !== service.name)
      ctx.warn(
        ['services', service.name],
        `is named "${name}" in Kubernetes (a Service name is a DNS label)`,
        `containers that reach it as "${service.name}" must use "${name}"`,
      );
    names.set(service.name, name);
  }
  warnProjectKeys(ctx, services);
  const claims = claimNames(ctx, services);
  let waitsOnJobs = false;
  for (const service of services) {
    const isJob = jobs.has(service.name);
    waitsOnJobs ||= Object.entries(service.depends_on).some(
      ([dep, d]) => d.condition === 'service_completed_successfully' && jobs.has(dep),
    );
    serviceObjects(ctx, service, kubeName(service.name), isJob, claims, jobs);
  }
  if (waitsOnJobs) jobWaiterAccess(ctx);
  const objects = [...ctx.objects].sort(
    (a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || compare(a.metadata?.name, b.metadata?.name),
  );
  return { objects, diagnostics: ctx.diagnostics };
}

function compare(a: string | undefined, b: string | undefined): number {
  return (a ?? '') < (b ?? '') ? -1 : (a ?? '') > (b ?? '') ? 1 : 0;
}

/** One-shot services: `restart: no` (or on-failure) that another service waits on with service_completed_successfully. */
export function jobServices(project: Project): Set<string> {
  const out = new Set<string>();
  for (const service of Object.values(project.services)) {
    for (const [dep, d] of Object.entries(service.depends_on)) {
      const target = project.services[dep];
      if (
        d.condition === 'service_completed_successfully' &&
        target !== undefined &&
        !/^(always|unless-stopped)$/.test(target.restart)
      )
        out.add(dep);
    }
  }
  return out;
}

// ---------- project-level keys ----------

function warnProjectKeys(ctx: Context, services: readonly Service[]): void {
  const used = new Set(services.flatMap((service) => Object.keys(service.networks)));
  for (const network of Object.values(ctx.project.networks)) {
    if (!used.has(network.key)) continue;
    const where = ['networks', network.key];
    if (network.driver !== undefined && network.driver !== 'bridge')
      ctx.warn([...where, 'driver'], `"${network.driver}" is not carried over: pods share the cluster's network`);
    if (Object.keys(network.driver_opts).length > 0) ctx.warn([...where, 'driver_opts'], 'is not carried over');
    if (network.ipam !== undefined)
      ctx.warn([...where, 'ipam'], 'is not carried over: the cluster assigns pod addresses');
    if (network.enable_ipv6 === true) ctx.warn([...where, 'enable_ipv6'], 'is not carried over');
    if (network.external)
      ctx.warn([...where, 'external'], "is not carried over: the NetworkPolicies admit only this project's pods");
  }
  for (const volume of Object.values(ctx.project.volumes)) {
    if (volume.driver !== undefined && volume.driver !== 'local')
      ctx.warn(
        ['volumes', volume.key, 'driver'],
        `"${volume.driver}" is not carried over: claims use the default StorageClass`,
      );
    if (Object.keys(volume.driver_opts).length > 0)
      ctx.warn(['volumes', volume.key, 'driver_opts'], 'is not carried over: claims use the default StorageClass');
  }
}

/** Claim name per named volume key; with --pvc, one PersistentVolumeClaim each (created unless external). */
function claimNames(ctx: Context, services: readonly Service[]): Map<string, string> {
  const out = new Map<string, string>();
  const users = new Map<string, string[]>();
  for (const service of services)
    for (const volume of service.volumes)
      if (volume.type === 'volume' && volume.source !== undefined) {
        const list = users.get(volume.source) ?? [];
        if (!list.includes(service.name)) list.push(service.name);
        users.set(volume.source, list);
      }
  for (const [key, list] of [...users].sort()) {
    const volume = ctx.project.volumes[key];
    const claim = kubeName(volume?.external === true ? volume.name : key);
    out.set(key, claim);
    if (ctx.options.pvc === true && volume?.external !== true) {
      ctx.objects.push(claimObject(ctx, claim, volume?.labels ?? {}));
    } else if (ctx.options.pvc !== true && list.length > 1) {
      ctx.warn(
        ['volumes', key],
        `is shared by ${list.join(', ')}: with StatefulSets each gets its own claim`,
        'use --pvc for one PersistentVolumeClaim they share (needs a ReadWriteMany storage class across nodes)',
      );
    }
  }
  return out;
}

function claimObject(ctx: Context, name: string, labels: Readonly<Record<string, string>>): IPersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: ctx.metadata(name, validLabels(labels)),
    spec: claimSpec(ctx),
  };
}

function claimSpec(ctx: Context): NonNullable<IPersistentVolumeClaim['spec']> {
  return {
    accessModes: [ctx.options.pvc === true ? 'ReadWriteMany' : 'ReadWriteOnce'],
    resources: { requests: { storage: ctx.options.volumeSize ?? '1Gi' } },
  };
}

function validLabels(labels: Readonly<Record<string, string | null>>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(labels).filter(
      (e): e is [string, string] => e[1] !== null && LABEL_KEY.test(e[0]) && LABEL_VALUE.test(e[1]),
    ),
  );
}

/** The ServiceAccount, Role and RoleBinding that let `kubectl wait` in an init container read the project's Jobs. */
function jobWaiterAccess(ctx: Context): void {
  const name = `${kubeName(ctx.project.name)}-job-waiter`;
  ctx.objects.push(
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: ctx.metadata(name) },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: ctx.metadata(name),
      rules: [{ apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'watch'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: ctx.metadata(name),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [
        {
          kind: 'ServiceAccount',
          name,
          ...(ctx.options.namespace !== undefined ? { namespace: ctx.options.namespace } : {}),
        },
      ],
    },
  );
}

// ---------- one service ----------

interface PodParts {
  readonly volumes: IVolume[];
  readonly mounts: IVolumeMount[];
  readonly claimTemplates: string[];
}

function serviceObjects(
  ctx: Context,
  service: Service,
  name: string,
  isJob: boolean,
  claims: Map<string, string>,
  jobs: Set<string>,
): void {
  const base = ['services', service.name] as const;
  if (service.image === undefined) {
    ctx.error(
      service.build !== undefined ? [...base, 'build'] : [...base],
      'has no image: the cluster cannot build it',
      service.build !== undefined
        ? `set services.${service.name}.image to a registry name and run: tsfig push ${service.name}`
        : undefined,
    );
    return;
  }
  if (service.build !== undefined)
    ctx.warn(
      [...base, 'build'],
      `is not carried over: the cluster pulls ${service.image}`,
      `push it first: tsfig push ${service.name}`,
    );
  const selector = { [KubeLabel.Name]: name, [KubeLabel.PartOf]: kubeLabelValue(ctx.project.name) };
  const networkLabels = Object.fromEntries(
    Object.keys(service.networks).map((key) => [`${KubeLabel.NetworkPrefix}${kubeName(key)}`, 'true']),
  );
  const { labels: ownLabels, rest } = composeLabels(ctx, service);
  const parts: PodParts = { volumes: [], mounts: [], claimTemplates: [] };
  const container = mainContainer(ctx, service, name, parts, claims, isJob);
  const initContainers = waitContainers(ctx, service, jobs);
  const spec = podSpec(ctx, service, container, initContainers, parts, isJob);
  if (initContainers.some((c) => c.name.startsWith(`${WAIT_PREFIX}job-`)))
    spec.serviceAccountName = `${kubeName(ctx.project.name)}-job-waiter`;
  const annotations: Record<string, string> = { ...rest, ...service.annotations };
  const dependsOn = Object.fromEntries(Object.entries(service.depends_on).map(([k, d]) => [k, d.condition]));
  if (Object.keys(dependsOn).length > 0) annotations[KubeAnnotation.DependsOn] = JSON.stringify(dependsOn);
  if (name !== service.name) annotations[KubeAnnotation.Service] = service.name;
  const template: IPodTemplateSpec = {
    metadata: {
      labels: { ...ctx.commonLabels(), ...selector, ...ownLabels, ...networkLabels },
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    },
    spec,
  };
  const meta = ctx.metadata(name, { ...selector, ...ownLabels, ...validLabels(service.deploy?.labels ?? {}) });
  if (isJob) {
    const restart = /^on-failure(?::(\d+))?$/.exec(service.restart);
    ctx.objects.push({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: meta,
      spec: {
        backoffLimit: restart === null ? 0 : Number(restart[1] ?? 6),
        ...(service.scale > 1 ? { completions: service.scale, parallelism: service.scale } : {}),
        template,
      },
    });
  } else if (parts.claimTemplates.length > 0) {
    ctx.objects.push({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: meta,
      spec: {
        serviceName: name,
        replicas: service.scale,
        selector: { matchLabels: selector },
        template,
        volumeClaimTemplates: parts.claimTemplates.map((claim) => ({
          metadata: { name: claim },
          spec: claimSpec(ctx),
        })),
      },
    });
  } else {
    ctx.objects.push({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta,
      spec: {
        replicas: service.scale,
        selector: { matchLabels: selector },
        // Named volumes as shared claims (--pvc) cannot be mounted by an old and a new pod on different nodes.
        ...(parts.volumes.some((v) => v.persistentVolumeClaim !== undefined) ? { strategy: { type: 'Recreate' } } : {}),
        template,
      },
    });
  }
  serviceEndpoints(ctx, service, name, selector, container.ports ?? []);
  ctx.objects.push(networkPolicy(ctx, service, name, selector));
}

/** The service's labels that are valid Kubernetes labels, and the rest (kept as pod annotations). */
function composeLabels(
  ctx: Context,
  service: Service,
): { labels: Record<string, string>; rest: Record<string, string> } {
  const labels: Record<string, string> = {};
  const rest: Record<string, string> = {};
  for (const [key, value] of Object.entries(service.labels).sort()) {
    if (LABEL_KEY.test(key) && LABEL_VALUE.test(value)) labels[key] = value;
    else {
      rest[key] = value;
      ctx.warn(
        ['services', service.name, 'labels', key],
        'is not a valid Kubernetes label: it is kept as a pod annotation',
      );
    }
  }
  return { labels, rest };
}

// ---------- the container ----------

function mainContainer(
  ctx: Context,
  service: Service,
  name: string,
  parts: PodParts,
  claims: Map<string, string>,
  isJob: boolean,
): IContainer {
  const base = ['services', service.name];
  const envName = `${name}-env`;
  const env = Object.entries(service.environment).filter((entry): entry is [string, string] => entry[1] !== null);
  if (env.length > 0) {
    const data: Record<string, string> = {};
    for (const [key, value] of env) {
      if (/^[-._a-zA-Z0-9]+$/.test(key)) data[key] = value;
      else ctx.warn([...base, 'environment', key], 'is not a valid ConfigMap key and is not carried over');
    }
    ctx.objects.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: ctx.metadata(envName, { [KubeLabel.Name]: name }),
      data,
    });
  }
  const ports = containerPorts(ctx, service);
  const container: IContainer = {
    name,
    image: service.image ?? '',
    ...(service.entrypoint !== undefined ? { command: [...service.entrypoint] } : {}),
    ...(service.command !== undefined ? { args: [...service.command] } : {}),
    ...(service.working_dir !== undefined ? { workingDir: service.working_dir } : {}),
    ...(env.length > 0 ? { envFrom: [{ configMapRef: { name: envName } }] } : {}),
    ...(ports.length > 0 ? { ports } : {}),
    ...(service.tty ? { tty: true } : {}),
    ...(service.stdin_open ? { stdin: true } : {}),
    ...pullPolicy(ctx, service),
    ...resources(ctx, service),
    ...securityContext(ctx, service),
    ...(isJob ? {} : probes(ctx, service)),
  };
  if (isJob && service.healthcheck !== undefined && !service.healthcheck.disable)
    ctx.warn([...base, 'healthcheck'], 'is not carried over: a Job has no probes');
  volumeMounts(ctx, service, parts, claims);
  secretMounts(ctx, service, parts, 'secrets');
  secretMounts(ctx, service, parts, 'configs');
  if (parts.mounts.length > 0) container.volumeMounts = parts.mounts;
  return container;
}

function containerPorts(ctx: Context, service: Service): IContainerPort[] {
  const out: IContainerPort[] = [];
  const add = (port: number, protocol: string, where: KeyPath) => {
    const proto = protocol.toUpperCase();
    if (proto !== 'TCP' && proto !== 'UDP' && proto !== 'SCTP') {
      ctx.warn(where, `protocol "${protocol}" is not carried over`);
      return;
    }
    if (!out.some((p) => p.containerPort === port && p.protocol === proto))
      out.push({ containerPort: port, protocol: proto });
  };
  service.ports.forEach((port, i) => add(port.target, port.protocol, ['services', service.name, 'ports', i]));
  service.expose.forEach((entry, i) => {
    const match = /^(\d+)(?:-(\d+))?(?:\/(\w+))?$/.exec(entry);
    if (match === null) return ctx.warn(['services', service.name, 'expose', i], `"${entry}" is not a port`);
    const first = Number(match[1]);
    const last = Number(match[2] ?? match[1]);
    if (last - first > 100)
      return ctx.warn(['services', service.name, 'expose', i], 'ranges over 100 ports are not carried over');
    for (let p = first; p <= last; p++) add(p, match[3] ?? 'tcp', ['services', service.name, 'expose', i]);
  });
  return out;
}

function pullPolicy(ctx: Context, service: Service): Pick<IContainer, 'imagePullPolicy'> {
  const map: Record<string, 'Always' | 'IfNotPresent' | 'Never'> = {
    always: 'Always',
    missing: 'IfNotPresent',
    if_not_present: 'IfNotPresent',
    never: 'Never',
  };
  const policy = map[service.pull_policy];
  if (policy !== undefined)
    return ctx.options.positions.has(['services', service.name, 'pull_policy']) ? { imagePullPolicy: policy } : {};
  ctx.warn(['services', service.name, 'pull_policy'], `"${service.pull_policy}" is not carried over`);
  return {};
}

function quantityCpu(cpus: number): string {
  return Number.isInteger(cpus) ? String(cpus) : `${Math.round(cpus * 1000)}m`;
}

function resources(ctx: Context, service: Service): Pick<IContainer, 'resources'> {
  const base = ['services', service.name];
  const limits: Record<string, string> = {};
  const requests: Record<string, string> = {};
  const deployLimits = service.deploy?.resources.limits;
  const reservations = service.deploy?.resources.reservations;
  const cpus = deployLimits?.cpus ?? service.cpus;
  const memory = deployLimits?.memory ?? service.mem_limit;
  if (cpus !== undefined && cpus > 0) limits.cpu = quantityCpu(cpus);
  if (memory !== undefined && memory > 0) limits.memory = String(memory);
  if (reservations?.cpus !== undefined && reservations.cpus > 0) requests.cpu = quantityCpu(reservations.cpus);
  const reserved = reservations?.memory ?? service.mem_reservation;
  if (reserved !== undefined && reserved > 0) requests.memory = String(reserved);
  if ((reservations?.devices.length ?? 0) > 0)
    ctx.warn(
      [...base, 'deploy', 'resources', 'reservations', 'devices'],
      'is not carried over: use a device plugin resource',
    );
  if (deployLimits?.pids !== undefined || service.pids_limit !== undefined)
    ctx.warn(
      deployLimits?.pids !== undefined ? [...base, 'deploy', 'resources', 'limits', 'pids'] : [...base, 'pids_limit'],
      'is not carried over: a pod PID limit is a kubelet setting',
    );
  if (service.memswap_limit !== undefined) ctx.warn([...base, 'memswap_limit'], 'is not carried over');
  if (service.shm_size !== undefined)
    ctx.warn([...base, 'shm_size'], 'is not carried over: mount an emptyDir (medium Memory) on /dev/shm');
  if (Object.keys(limits).length === 0 && Object.keys(requests).length === 0) return {};
  return {
    resources: {
      ...(Object.keys(limits).length > 0 ? { limits } : {}),
      ...(Object.keys(requests).length > 0 ? { requests } : {}),
    },
  };
}

function securityContext(ctx: Context, service: Service): Pick<IContainer, 'securityContext'> {
  const base = ['services', service.name];
  const context: ISecurityContext = {};
  if (service.user !== undefined) {
    const match = /^(\d+)(?::(\d+))?$/.exec(service.user);
    if (match === null)
      ctx.warn([...base, 'user'], `"${service.user}" is not carried over: Kubernetes takes numeric ids only`);
    else {
      context.runAsUser = Number(match[1]);
      if (match[2] !== undefined) context.runAsGroup = Number(match[2]);
    }
  }
  const cap = (name: string) => name.replace(/^CAP_/i, '').toUpperCase();
  if (service.cap_add.length > 0 || service.cap_drop.length > 0)
    context.capabilities = {
      ...(service.cap_add.length > 0 ? { add: service.cap_add.map(cap) } : {}),
      ...(service.cap_drop.length > 0 ? { drop: service.cap_drop.map(cap) } : {}),
    };
  if (service.read_only) context.readOnlyRootFilesystem = true;
  if (service.privileged) context.privileged = true;
  const securityOpt = service.other.security_opt;
  if (Array.isArray(securityOpt))
    for (const [i, option] of (securityOpt as unknown[]).entries()) {
      if (option === 'no-new-privileges' || option === 'no-new-privileges:true')
        context.allowPrivilegeEscalation = false;
      else if (option === 'seccomp:unconfined' || option === 'seccomp=unconfined')
        context.seccompProfile = { type: 'Unconfined' };
      else ctx.warn([...base, 'security_opt', i], `"${String(option)}" is not carried over`);
    }
  return Object.keys(context).length > 0 ? { securityContext: context } : {};
}

function seconds(ms: number | undefined, fallback: number): number {
  return ms === undefined ? fallback : Math.max(1, Math.ceil(ms / 1000));
}

function probes(ctx: Context, service: Service): Pick<IContainer, 'readinessProbe' | 'livenessProbe' | 'startupProbe'> {
  const check = service.healthcheck;
  const base = ['services', service.name, 'healthcheck'];
  if (check === undefined || check.disable) return {};
  const test = check.test;
  if (test === undefined) {
    ctx.warn(base, "uses the image's HEALTHCHECK, which Kubernetes ignores: write test: explicitly");
    return {};
  }
  if (test[0] === 'NONE') return {};
  const command = test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', test.slice(1).join(' ')] : test.slice(1);
  for (const [key, ms] of [
    ['interval', check.interval],
    ['timeout', check.timeout],
    ['start_interval', check.start_interval],
  ] as const)
    if (ms !== undefined && ms % 1000 !== 0)
      ctx.warn([...base, key], `${ms}ms is rounded up to ${seconds(ms, 0)}s: probes count in whole seconds`);
  const period = seconds(check.interval, 30);
  const probe: IProbe = {
    exec: { command: [...command] },
    periodSeconds: period,
    timeoutSeconds: seconds(check.timeout, 30),
    failureThreshold: check.retries ?? 3,
  };
  const out: Pick<IContainer, 'readinessProbe' | 'livenessProbe' | 'startupProbe'> = {
    readinessProbe: { ...probe, successThreshold: 1 },
    livenessProbe: probe,
  };
  if (check.start_period !== undefined && check.start_period > 0) {
    const startPeriod = seconds(check.start_interval ?? check.interval, 5);
    out.startupProbe = {
      ...probe,
      periodSeconds: startPeriod,
      // Failures in the start period do not count, then `retries` more do (compose's rule).
      failureThreshold: Math.ceil(check.start_period / 1000 / startPeriod) + (check.retries ?? 3),
    };
  }
  return out;
}

// ---------- volumes, secrets and configs ----------

function volumeName(parts: PodParts, wanted: string): string {
  let name = kubeName(wanted);
  for (let i = 2; parts.volumes.some((v) => v.name === name) || parts.claimTemplates.includes(name); i++)
    name = `${kubeName(wanted).slice(0, 58)}-${i}`;
  return name;
}

function volumeMounts(ctx: Context, service: Service, parts: PodParts, claims: Map<string, string>): void {
  service.volumes.forEach((volume, i) =>
    volumeMount(ctx, service, volume, ['services', service.name, 'volumes', i], parts, claims),
  );
  service.tmpfs.forEach((entry, i) => {
    const [target = entry] = entry.split(':');
    const name = volumeName(parts, `tmpfs-${path.basename(target) || 'root'}`);
    parts.volumes.push({ name, emptyDir: { medium: 'Memory' } });
    parts.mounts.push({ name, mountPath: target });
    if (entry.includes(':')) ctx.warn(['services', service.name, 'tmpfs', i], 'options are not carried over');
  });
  if (service.volumes_from.length > 0)
    ctx.warn(
      ['services', service.name, 'volumes_from'],
      'is not carried over: pods do not share volumes with other pods',
      'mount the same named volume in both services (with --pvc)',
    );
}

function volumeMount(
  ctx: Context,
  service: Service,
  volume: ServiceVolume,
  where: KeyPath,
  parts: PodParts,
  claims: Map<string, string>,
): void {
  const mount = (name: string): IVolumeMount => ({
    name,
    mountPath: volume.target,
    ...(volume.read_only ? { readOnly: true } : {}),
    ...(volume.volume?.subpath !== undefined ? { subPath: volume.volume.subpath } : {}),
  });
  switch (volume.type) {
    case 'volume': {
      if (volume.source === undefined) {
        const name = volumeName(parts, `anon-${path.basename(volume.target) || 'root'}`);
        parts.volumes.push({ name, emptyDir: {} });
        parts.mounts.push(mount(name));
        return;
      }
      const claim = claims.get(volume.source) ?? kubeName(volume.source);
      const external = ctx.project.volumes[volume.source]?.external === true;
      if (ctx.options.pvc === true || external) {
        const name = volumeName(parts, volume.source);
        parts.volumes.push({
          name,
          persistentVolumeClaim: { claimName: claim, ...(volume.read_only ? { readOnly: true } : {}) },
        });
        parts.mounts.push(mount(name));
      } else {
        if (!parts.claimTemplates.includes(claim)) parts.claimTemplates.push(claim);
        parts.mounts.push(mount(claim));
      }
      if (volume.volume?.nocopy === true)
        ctx.warn([...where], 'nocopy is the only behaviour in Kubernetes (volumes start empty)');
      return;
    }
    case 'tmpfs': {
      const name = volumeName(parts, `tmpfs-${path.basename(volume.target) || 'root'}`);
      const size = volume.tmpfs?.size;
      parts.volumes.push({
        name,
        emptyDir: { medium: 'Memory', ...(size !== undefined ? { sizeLimit: String(size) } : {}) },
      });
      parts.mounts.push(mount(name));
      if (volume.tmpfs?.mode !== undefined) ctx.warn([...where], 'tmpfs mode is not carried over');
      return;
    }
    case 'bind': {
      if (ctx.options.allowHostpath !== true) {
        ctx.warn(
          where,
          `bind mount of ${volume.source ?? '?'} on ${volume.target} is not carried over: the cluster's nodes do not have the host's files`,
          'bake the files into the image, use a config or a volume; or pass --allow-hostpath for a hostPath volume',
        );
        return;
      }
      const name = volumeName(parts, `host-${path.basename(volume.source ?? '') || 'root'}`);
      parts.volumes.push({
        name,
        hostPath: {
          path: volume.source ?? '/',
          ...(volume.bind?.create_host_path === true ? { type: 'DirectoryOrCreate' } : {}),
        },
      });
      parts.mounts.push(mount(name));
      if (volume.bind?.propagation !== undefined) ctx.warn(where, 'bind propagation is not carried over');
      return;
    }
    case 'image':
    case 'npipe':
    case 'cluster':
      ctx.warn(where, `type "${volume.type}" (${volume.target}) is not carried over`);
  }
}

/** A Secret or ConfigMap per top-level secret/config a service uses, mounted file by file at the compose paths. */
function secretMounts(ctx: Context, service: Service, parts: PodParts, kind: 'secrets' | 'configs'): void {
  service[kind].forEach((ref: ServiceSecret, i) => {
    const where = ['services', service.name, kind, i];
    const top = ctx.project[kind][ref.source];
    if (top === undefined) return;
    const objectName = kubeName(top.external ? top.name : ref.source);
    const key = /^[-._a-zA-Z0-9]+$/.test(ref.source) ? ref.source : 'content';
    if (
      !top.external &&
      !ctx.objects.some(
        (o) => o.kind === (kind === 'secrets' ? 'Secret' : 'ConfigMap') && o.metadata?.name === objectName,
      )
    ) {
      const content = secretContent(ctx, top, [kind, ref.source]);
      if (content === undefined) return;
      const metadata = ctx.metadata(objectName, validLabels(top.labels));
      ctx.objects.push(
        kind === 'secrets'
          ? ({
              apiVersion: 'v1',
              kind: 'Secret',
              type: 'Opaque',
              metadata,
              data: { [key]: content.toString('base64') },
            } satisfies ISecret)
          : ({
              apiVersion: 'v1',
              kind: 'ConfigMap',
              metadata,
              binaryData: { [key]: content.toString('base64') },
            } satisfies IConfigMap),
      );
    }
    if (ref.uid !== undefined || ref.gid !== undefined)
      ctx.warn(where, 'uid and gid are not carried over: the files belong to root (set fsGroup for group access)');
    const name = volumeName(parts, `${kind === 'secrets' ? 'secret' : 'config'}-${ref.source}`);
    const items = [
      {
        key,
        path: path.basename(ref.target),
        ...(ref.mode !== undefined ? { mode: ref.mode } : {}), // already a number (0440 in YAML is octal)
      },
    ];
    parts.volumes.push(
      kind === 'secrets'
        ? { name, secret: { secretName: objectName, items } }
        : { name, configMap: { name: objectName, items } },
    );
    parts.mounts.push({ name, mountPath: ref.target, subPath: path.basename(ref.target), readOnly: true });
  });
}

function secretContent(ctx: Context, top: Project['secrets'][string], where: KeyPath): Buffer | undefined {
  if (top.content !== undefined) return Buffer.from(top.content);
  if (top.environment !== undefined) {
    const value = ctx.options.env?.[top.environment];
    if (value === undefined) {
      ctx.warn([...where, 'environment'], `names ${top.environment}, which is not set: the object is not written`);
      return undefined;
    }
    return Buffer.from(value);
  }
  if (top.file !== undefined) {
    try {
      return ctx.options.readFile?.(top.file) ?? Buffer.alloc(0);
    } catch (error) {
      ctx.error([...where, 'file'], `cannot be read: ${(error as Error).message}`);
      return undefined;
    }
  }
  ctx.warn(where, 'has no content, file or environment: the object is not written');
  return undefined;
}

// ---------- dependencies ----------

function waitContainers(ctx: Context, service: Service, jobs: Set<string>): IContainer[] {
  const out: IContainer[] = [];
  for (const [dep, d] of Object.entries(service.depends_on).sort()) {
    const target = ctx.project.services[dep];
    const where = ['services', service.name, 'depends_on', dep];
    if (target === undefined) {
      if (d.required) ctx.warn(where, 'names a service that is not enabled: nothing waits for it');
      continue;
    }
    const name = kubeName(dep);
    if (d.condition === 'service_completed_successfully') {
      if (!jobs.has(dep)) {
        ctx.warn(where, `waits for ${dep} to complete, but it restarts (${target.restart}): nothing waits for it`);
        continue;
      }
      out.push({
        name: `${WAIT_PREFIX}job-${name}`.slice(0, 63),
        image: ctx.options.kubectlImage ?? DEFAULT_KUBECTL_IMAGE,
        command: ['kubectl', 'wait', '--for=condition=complete', '--timeout=-1s', `job/${name}`],
      });
      continue;
    }
    const port = firstPort(target);
    // A ClusterIP Service routes only to ready pods, and a headless one resolves only them: either way the wait
    // ends when the dependency's readiness probe (its compose healthcheck) passes, or when it runs without one.
    const script =
      port !== undefined
        ? `until nc -z -w 2 ${name} ${port}; do echo waiting for ${name}:${port}; sleep 1; done`
        : `until nslookup ${name} >/dev/null 2>&1; do echo waiting for ${name}; sleep 1; done`;
    out.push({
      name: `${WAIT_PREFIX}${name}`.slice(0, 63),
      image: ctx.options.waitImage ?? DEFAULT_WAIT_IMAGE,
      command: ['sh', '-c', script],
    });
    if (d.restart)
      ctx.warn([...where, 'restart'], 'is not carried over: pods are not restarted with their dependencies');
  }
  for (const link of service.links)
    if (
      link.includes(':') &&
      !ctx.objects.some((o) => o.kind === 'Service' && o.metadata?.name === kubeName(link.split(':')[1] ?? ''))
    )
      ctx.warn(
        ['services', service.name, 'links'],
        `alias of "${link}" is not carried over: link aliases are per container`,
      );
  return out;
}

function firstPort(service: Service): number | undefined {
  const port = service.ports[0]?.target;
  if (port !== undefined) return port;
  const expose = /^(\d+)/.exec(service.expose[0] ?? '');
  return expose !== null ? Number(expose[1]) : undefined;
}

// ---------- the pod ----------

function podSpec(
  ctx: Context,
  service: Service,
  container: IContainer,
  initContainers: IContainer[],
  parts: PodParts,
  isJob: boolean,
): IPodSpec {
  const base = ['services', service.name];
  const spec: IPodSpec = {
    containers: [container],
    ...(initContainers.length > 0 ? { initContainers } : {}),
    ...(parts.volumes.length > 0 ? { volumes: parts.volumes } : {}),
    // compose does not set docker-link-style variables for every service (only with links:).
    enableServiceLinks: false,
    terminationGracePeriodSeconds: Math.ceil(service.stop_grace_period / 1000),
  };
  if (isJob) spec.restartPolicy = /^on-failure/.test(service.restart) ? 'OnFailure' : 'Never';
  else if (!/^(always|unless-stopped)$/.test(service.restart) && ctx.options.positions.has([...base, 'restart']))
    ctx.warn([...base, 'restart'], `"${service.restart}" is not carried over: a Deployment's pods always restart`);
  if (service.hostname !== undefined) spec.hostname = kubeName(service.hostname);
  if (service.domainname !== undefined) ctx.warn([...base, 'domainname'], 'is not carried over');
  const hostAliases = Object.entries(service.extra_hosts).flatMap(([host, ips]) => ips.map((ip) => ({ ip, host })));
  const grouped = new Map<string, string[]>();
  for (const { ip, host } of hostAliases) {
    if (ip === 'host-gateway') {
      ctx.warn([...base, 'extra_hosts'], `"${host}:host-gateway" is not carried over: pods have no host gateway`);
      continue;
    }
    grouped.set(ip, [...(grouped.get(ip) ?? []), host]);
  }
  if (grouped.size > 0) spec.hostAliases = [...grouped].map(([ip, hostnames]) => ({ ip, hostnames }));
  if (service.dns.length + service.dns_search.length + service.dns_opt.length > 0)
    spec.dnsConfig = {
      ...(service.dns.length > 0 ? { nameservers: [...service.dns] } : {}),
      ...(service.dns_search.length > 0 ? { searches: [...service.dns_search] } : {}),
      ...(service.dns_opt.length > 0
        ? {
            options: service.dns_opt.map((o) => ({
              name: o.split(':')[0] ?? o,
              ...(o.includes(':') ? { value: o.split(':')[1] } : {}),
            })),
          }
        : {}),
    };
  const sysctls = Object.entries(service.sysctls).sort();
  if (sysctls.length > 0) spec.securityContext = { sysctls: sysctls.map(([name, value]) => ({ name, value })) };
  networkMode(ctx, service, spec);
  for (const [key, mode] of [
    ['ipc', service.other.ipc],
    ['pid', service.other.pid],
  ] as const) {
    if (mode === undefined) continue;
    if (mode === 'host') spec[key === 'ipc' ? 'hostIPC' : 'hostPID'] = true;
    else if (key === 'pid' && typeof mode === 'string' && mode.startsWith('service:'))
      ctx.warn([...base, key], 'is not carried over: only containers of one pod can share a PID namespace');
    else if (mode !== 'private' && mode !== 'shareable')
      ctx.warn([...base, key], `${JSON.stringify(mode)} is not carried over`);
  }
  if (service.platform !== undefined) {
    const [os, arch] = service.platform.split('/');
    spec.nodeSelector = {
      'kubernetes.io/os': os ?? 'linux',
      ...(arch !== undefined ? { 'kubernetes.io/arch': arch } : {}),
    };
  }
  warnUnmapped(ctx, service);
  return spec;
}

function networkMode(ctx: Context, service: Service, spec: IPodSpec): void {
  const mode = service.network_mode;
  const where = ['services', service.name, 'network_mode'];
  if (mode === undefined || mode === 'bridge' || mode === 'default') return;
  if (mode === 'host') {
    spec.hostNetwork = true;
    return;
  }
  ctx.warn(
    where,
    `"${mode}" is not carried over: ${mode.startsWith('service:') || mode.startsWith('container:') ? 'only containers of one pod share a network namespace' : 'pods always have a network'}`,
  );
}

const MAPPED_OTHER = new Set(['security_opt', 'ipc', 'pid']);

function warnUnmapped(ctx: Context, service: Service): void {
  const base = ['services', service.name];
  const simple: [string, boolean, string][] = [
    [
      'init',
      service.init === true,
      'is not carried over: Kubernetes has no init process option (use an image with tini)',
    ],
    ['stop_signal', service.stop_signal !== undefined, 'is not carried over (lifecycle.stopSignal is alpha in v1.33)'],
    ['ulimits', Object.keys(service.ulimits).length > 0, "is not carried over: limits come from the node's runtime"],
    ['devices', service.devices.length > 0, 'is not carried over: use a device plugin'],
    ['logging', service.logging !== undefined, 'is not carried over: the cluster collects container output'],
    ['external_links', service.external_links.length > 0, 'is not carried over'],
    ['container_name', service.container_name !== undefined, 'is not carried over: pods are named by their controller'],
  ];
  for (const [key, set, sentence] of simple) if (set) ctx.warn([...base, key], sentence);
  const deploy = service.deploy;
  if (deploy?.mode !== undefined && deploy.mode !== 'replicated')
    ctx.warn([...base, 'deploy', 'mode'], `"${deploy.mode}" is not carried over (a DaemonSet is not generated)`);
  if (deploy?.restart_policy !== undefined) ctx.warn([...base, 'deploy', 'restart_policy'], 'is not carried over');
  for (const key of Object.keys(deploy?.other ?? {}).sort()) ctx.warn([...base, 'deploy', key], 'is not carried over');
  for (const key of Object.keys(service.other).sort())
    if (!MAPPED_OTHER.has(key)) ctx.warn([...base, key], 'is not carried over');
  for (const [key, network] of Object.entries(service.networks)) {
    const where = [...base, 'networks', key];
    if (network.ipv4_address !== undefined)
      ctx.warn([...where, 'ipv4_address'], 'is not carried over: the cluster assigns pod addresses');
    if (network.ipv6_address !== undefined) ctx.warn([...where, 'ipv6_address'], 'is not carried over');
    if (network.mac_address !== undefined) ctx.warn([...where, 'mac_address'], 'is not carried over');
  }
}

// ---------- Services and NetworkPolicies ----------

function serviceEndpoints(
  ctx: Context,
  service: Service,
  name: string,
  selector: Record<string, string>,
  ports: readonly IContainerPort[],
): void {
  const servicePorts: IServicePort[] = ports.map((p) => ({
    name: `${(p.protocol ?? 'TCP').toLowerCase()}-${p.containerPort}`,
    port: p.containerPort,
    targetPort: p.containerPort,
    protocol: p.protocol ?? 'TCP',
  }));
  const make = (serviceName: string, extra: Partial<NonNullable<IService['spec']>> = {}): IService => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: ctx.metadata(serviceName, { [KubeLabel.Name]: name }),
    spec: {
      selector,
      ...(servicePorts.length > 0 ? { ports: servicePorts } : { clusterIP: 'None' }),
      ...extra,
    },
  });
  ctx.objects.push(make(name));
  const aliases = new Set<string>();
  for (const network of Object.values(service.networks)) for (const alias of network.aliases) aliases.add(alias);
  for (const alias of [...aliases].sort()) {
    const aliasName = kubeName(alias);
    if (aliasName === name || ctx.objects.some((o) => o.kind === 'Service' && o.metadata?.name === aliasName)) continue;
    if (!/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(alias))
      ctx.warn(['services', service.name, 'networks'], `alias "${alias}" becomes the Service "${aliasName}"`);
    ctx.objects.push(make(aliasName));
  }
  const published = service.ports
    .map((port, i) => ({ port, i }))
    .filter(({ port }) => port.published !== undefined && port.published !== '');
  const type = ctx.options.serviceType ?? 'LoadBalancer';
  const publishedPorts: IServicePort[] = [];
  for (const { port, i } of published) {
    const where = ['services', service.name, 'ports', i];
    const host = Number(port.published);
    if (!Number.isInteger(host)) {
      ctx.warn(where, `the published range ${port.published ?? ''} is not carried over`);
      continue;
    }
    if (port.host_ip !== undefined && port.host_ip !== '0.0.0.0' && port.host_ip !== '::')
      ctx.warn(
        where,
        `host_ip ${port.host_ip} is not carried over: a ${type} Service listens on every address it is given`,
      );
    if (port.mode === 'host') ctx.warn(where, 'mode: host is not carried over (hostPort is not generated)');
    const entry: IServicePort = {
      name: `${port.protocol}-${host}`,
      port: host,
      targetPort: port.target,
      protocol: port.protocol.toUpperCase() as 'TCP' | 'UDP' | 'SCTP',
    };
    if (type === 'NodePort') {
      if (host >= 30000 && host <= 32767) entry.nodePort = host;
      else
        ctx.warn(
          where,
          `published port ${host} is outside the NodePort range (30000-32767): the cluster picks the node port`,
        );
    }
    if (!publishedPorts.some((p) => p.port === entry.port && p.protocol === entry.protocol)) publishedPorts.push(entry);
  }
  if (publishedPorts.length > 0)
    ctx.objects.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: ctx.metadata(`${name}-published`.slice(0, 63), { [KubeLabel.Name]: name }),
      spec: { type, selector, ports: publishedPorts },
    });
}

/**
 * Ingress to a service's pods only from pods on one of its compose networks (and from anywhere to its published
 * ports); pods only on `internal: true` networks also get egress only to those networks and DNS.
 */
function networkPolicy(ctx: Context, service: Service, name: string, selector: Record<string, string>): INetworkPolicy {
  const peers: INetworkPolicyPeer[] = Object.keys(service.networks)
    .sort()
    .map((key) => ({ podSelector: { matchLabels: { [`${KubeLabel.NetworkPrefix}${kubeName(key)}`]: 'true' } } }));
  const published = service.ports.filter((p) => p.published !== undefined && p.published !== '');
  const ingress: NonNullable<INetworkPolicy['spec']>['ingress'] = [];
  if (peers.length > 0) ingress.push({ from: peers });
  if (published.length > 0)
    ingress.push({
      ports: published.map((p) => ({ port: p.target, protocol: p.protocol.toUpperCase() as 'TCP' | 'UDP' | 'SCTP' })),
    });
  const internalOnly =
    Object.keys(service.networks).length > 0 &&
    Object.keys(service.networks).every((key) => ctx.project.networks[key]?.internal === true);
  const egress = internalOnly
    ? [
        { to: peers },
        {
          ports: [
            { port: 53, protocol: 'UDP' as const },
            { port: 53, protocol: 'TCP' as const },
          ],
        },
      ]
    : undefined;
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: ctx.metadata(name, { [KubeLabel.Name]: name }),
    spec: {
      podSelector: { matchLabels: selector },
      policyTypes: egress !== undefined ? ['Ingress', 'Egress'] : ['Ingress'],
      ingress,
      ...(egress !== undefined ? { egress } : {}),
    },
  };
}
