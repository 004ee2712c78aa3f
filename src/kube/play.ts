/**
 * `tsfig kube play`: Kubernetes objects → a compose document (pure), which the CLI loads as a project and runs
 * through the planner and executor, so play gets up's plan, `--dry-run` and `down` as they are.
 *
 * A workload's pod (Pod, Deployment, StatefulSet, Job) becomes one service per container; the containers after the
 * first join the first one's network namespace (`network_mode: service:X`), as in a pod. A Service becomes network
 * aliases of the pods it selects (its name resolves as in a cluster's DNS), and its LoadBalancer/NodePort ports are
 * published on 127.0.0.1, as are hostPorts. Readiness (else liveness) probes become healthchecks; init containers
 * run first (service_completed_successfully), except tsfig's own wait-for ones, replaced by the depends_on they stand
 * for. PVCs and claim templates are named volumes, emptyDirs anonymous volumes (tmpfs for medium Memory),
 * ConfigMaps and Secrets environment variables or read-only files.
 */
import path from 'node:path';
import { KubeAnnotation, WAIT_PREFIX, kubeName } from './generate.js';
import type { IConfigMap, IContainer, IPodSpec, IProbe, ISecret, IService, KubeObject } from './objects.js';

/** What a kube play source file holds: objects with where they start. */
export interface SourceObject {
  readonly object: Record<string, unknown>;
  readonly file: string;
  readonly line: number;
}

export interface PlayFile {
  readonly content: Buffer;
  readonly mode: number;
}

export interface PlayResult {
  /** The compose document (`services`, `volumes`). */
  readonly compose: {
    services: Record<string, Record<string, unknown>>;
    volumes: Record<string, Record<string, unknown>>;
  };
  /** Files to write under the project's play directory (ConfigMap and Secret volumes), by relative path. */
  readonly files: Map<string, PlayFile>;
  readonly warnings: string[];
}

const KINDS = new Set([
  'Pod',
  'Deployment',
  'StatefulSet',
  'Job',
  'Service',
  'ConfigMap',
  'Secret',
  'PersistentVolumeClaim',
]);
const IGNORED = new Set(['NetworkPolicy', 'ServiceAccount', 'Role', 'RoleBinding', 'Namespace']);

interface Workload {
  readonly name: string;
  readonly kind: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly spec: IPodSpec;
  readonly replicas: number;
  readonly claimTemplates: readonly string[];
  readonly where: string;
}

/**
 * Translates objects into a compose document. `dir` is the absolute directory the files of ConfigMap/Secret
 * volumes are written to. Unsupported kinds and fields are warnings (`file:line: Kind/name: ...`).
 */
export function translate(sources: readonly SourceObject[], dir: string): PlayResult {
  const warnings: string[] = [];
  const configMaps = new Map<string, Record<string, Buffer>>();
  const workloads: Workload[] = [];
  const services: { object: IService; where: string }[] = [];
  const claims = new Set<string>();
  for (const { object, file, line } of sources) {
    const kind = String(object.kind);
    const meta = (object.metadata ?? {}) as {
      name?: string;
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
    };
    const name = meta.name ?? '';
    const where = `${file}:${line}: ${kind}/${name}`;
    if (IGNORED.has(kind)) {
      warnings.push(`${where}: ${kind} is not played (there is no cluster API; the project's network isolates it)`);
      continue;
    }
    if (!KINDS.has(kind)) {
      warnings.push(`${where}: ${kind} is not supported by kube play and is ignored`);
      continue;
    }
    switch (kind) {
      case 'ConfigMap': {
        const cm = object as unknown as IConfigMap;
        const data: Record<string, Buffer> = {};
        for (const [k, v] of Object.entries(cm.data ?? {})) data[k] = Buffer.from(v);
        for (const [k, v] of Object.entries(cm.binaryData ?? {})) data[k] = Buffer.from(v, 'base64');
        configMaps.set(`ConfigMap/${name}`, data);
        break;
      }
      case 'Secret': {
        const secret = object as unknown as ISecret;
        const data: Record<string, Buffer> = {};
        for (const [k, v] of Object.entries(secret.data ?? {})) data[k] = Buffer.from(v, 'base64');
        for (const [k, v] of Object.entries(secret.stringData ?? {})) data[k] = Buffer.from(v);
        configMaps.set(`Secret/${name}`, data);
        break;
      }
      case 'PersistentVolumeClaim':
        claims.add(name);
        break;
      case 'Service':
        services.push({ object: object as unknown as IService, where });
        break;
      default: {
        const spec = (object.spec ?? {}) as Record<string, unknown>;
        const pod =
          kind === 'Pod'
            ? (object as { spec?: IPodSpec }).spec
            : (spec.template as { spec?: IPodSpec } | undefined)?.spec;
        const template =
          kind === 'Pod' ? meta : ((spec.template as { metadata?: typeof meta } | undefined)?.metadata ?? {});
        if (pod === undefined) {
          warnings.push(`${where}: has no pod spec and is ignored`);
          break;
        }
        const templates = (spec.volumeClaimTemplates as { metadata?: { name?: string } }[] | undefined) ?? [];
        workloads.push({
          name,
          kind,
          labels: { ...template.labels },
          annotations: { ...template.annotations },
          spec: pod,
          replicas:
            kind === 'Deployment' || kind === 'StatefulSet'
              ? typeof spec.replicas === 'number'
                ? spec.replicas
                : 1
              : kind === 'Job' && typeof spec.parallelism === 'number'
                ? spec.parallelism
                : 1,
          claimTemplates: templates.map((t) => t.metadata?.name ?? '').filter((n) => n !== ''),
          where,
        });
      }
    }
  }
  const out: PlayResult = { compose: { services: {}, volumes: {} }, files: new Map(), warnings };
  const ctx: PlayContext = { out, configMaps, dir, claims, workloads };
  for (const workload of workloads) playWorkload(ctx, workload);
  for (const { object, where } of services) playService(ctx, object, where);
  for (const claim of [...claims].sort()) out.compose.volumes[claim] = {};
  return out;
}

interface PlayContext {
  readonly out: PlayResult;
  readonly configMaps: Map<string, Record<string, Buffer>>;
  readonly dir: string;
  readonly claims: Set<string>;
  readonly workloads: readonly Workload[];
}

/** The compose service of a workload's first container (what Services point at). */
function mainService(workload: Workload): string {
  return kubeName(workload.name);
}

function playWorkload(ctx: PlayContext, workload: Workload): void {
  const { out } = ctx;
  const main = mainService(workload);
  const spec = workload.spec;
  const restart =
    workload.kind === 'Job'
      ? spec.restartPolicy === 'OnFailure'
        ? 'on-failure'
        : 'no'
      : spec.restartPolicy === 'Never'
        ? 'no'
        : spec.restartPolicy === 'OnFailure'
          ? 'on-failure'
          : 'always';
  const dependsOn: Record<string, { condition: string }> = {};
  const waits = workload.annotations[KubeAnnotation.DependsOn];
  if (waits !== undefined) {
    try {
      for (const [dep, condition] of Object.entries(JSON.parse(waits) as Record<string, string>))
        dependsOn[kubeName(dep)] = { condition };
    } catch {
      out.warnings.push(`${workload.where}: annotation ${KubeAnnotation.DependsOn} is not JSON and is ignored`);
    }
  }
  let previousInit: string | undefined;
  for (const init of spec.initContainers ?? []) {
    if (init.name.startsWith(WAIT_PREFIX) && waits !== undefined) continue;
    const name = `${main}-init-${kubeName(init.name)}`;
    out.compose.services[name] = {
      ...containerFields(ctx, workload, init),
      restart: 'no',
      ...(previousInit !== undefined
        ? { depends_on: { [previousInit]: { condition: 'service_completed_successfully' } } }
        : {}),
    };
    previousInit = name;
  }
  if (previousInit !== undefined) dependsOn[previousInit] = { condition: 'service_completed_successfully' };
  spec.containers.forEach((container, i) => {
    const name = i === 0 ? main : `${main}-${kubeName(container.name)}`;
    out.compose.services[name] = {
      ...containerFields(ctx, workload, container),
      restart,
      ...(workload.replicas !== 1 ? { scale: workload.replicas } : {}),
      ...(i === 0
        ? {
            ...(spec.hostNetwork === true ? { network_mode: 'host' } : {}),
            ...(spec.hostname !== undefined ? { hostname: spec.hostname } : {}),
            ...(Object.keys(dependsOn).length > 0 ? { depends_on: dependsOn } : {}),
            ...podFields(spec),
          }
        : { network_mode: `service:${main}`, depends_on: { [main]: { condition: 'service_started' } } }),
    };
  });
}

function podFields(spec: IPodSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (spec.terminationGracePeriodSeconds !== undefined)
    out.stop_grace_period = `${spec.terminationGracePeriodSeconds}s`;
  if (spec.hostAliases !== undefined)
    out.extra_hosts = spec.hostAliases.flatMap((a) => (a.hostnames ?? []).map((h) => `${h}=${a.ip}`));
  const sysctls = spec.securityContext?.sysctls;
  if (sysctls !== undefined) out.sysctls = Object.fromEntries(sysctls.map((s) => [s.name, s.value]));
  if (spec.dnsConfig?.nameservers !== undefined) out.dns = spec.dnsConfig.nameservers;
  if (spec.dnsConfig?.searches !== undefined) out.dns_search = spec.dnsConfig.searches;
  if (spec.hostIPC === true) out.ipc = 'host';
  if (spec.hostPID === true) out.pid = 'host';
  return out;
}

function containerFields(ctx: PlayContext, workload: Workload, container: IContainer): Record<string, unknown> {
  const where = `${workload.where}: container ${container.name}`;
  const out: Record<string, unknown> = { image: container.image };
  if (container.command !== undefined) out.entrypoint = container.command;
  if (container.args !== undefined) out.command = container.args;
  if (container.command !== undefined && container.args === undefined) out.command = [];
  if (container.workingDir !== undefined) out.working_dir = container.workingDir;
  if (container.tty === true) out.tty = true;
  if (container.stdin === true) out.stdin_open = true;
  const env = environment(ctx, container, where);
  if (Object.keys(env).length > 0) out.environment = env;
  const ports = (container.ports ?? [])
    .filter((p) => p.hostPort !== undefined)
    .map((p) => `${p.hostIP ?? '127.0.0.1'}:${p.hostPort}:${p.containerPort}/${(p.protocol ?? 'TCP').toLowerCase()}`);
  if (ports.length > 0) out.ports = ports;
  const expose = (container.ports ?? []).map((p) => `${p.containerPort}/${(p.protocol ?? 'TCP').toLowerCase()}`);
  if (expose.length > 0) out.expose = expose;
  const health = healthcheck(container, where, ctx.out.warnings);
  if (health !== undefined) out.healthcheck = health;
  const limits = container.resources?.limits ?? {};
  if (limits.cpu !== undefined) out.cpus = cpuQuantity(String(limits.cpu));
  if (limits.memory !== undefined) out.mem_limit = memoryQuantity(String(limits.memory));
  const security = container.securityContext;
  if (security?.runAsUser !== undefined)
    out.user = `${security.runAsUser}${security.runAsGroup !== undefined ? `:${security.runAsGroup}` : ''}`;
  if (security?.capabilities?.add !== undefined) out.cap_add = security.capabilities.add;
  if (security?.capabilities?.drop !== undefined) out.cap_drop = security.capabilities.drop;
  if (security?.readOnlyRootFilesystem === true) out.read_only = true;
  if (security?.privileged === true) out.privileged = true;
  if (security?.allowPrivilegeEscalation === false) out.security_opt = ['no-new-privileges:true'];
  const volumes = volumeMounts(ctx, workload, container, where);
  if (volumes.length > 0) out.volumes = volumes;
  return out;
}

function cpuQuantity(value: string): number {
  return value.endsWith('m') ? Number(value.slice(0, -1)) / 1000 : Number(value);
}

function memoryQuantity(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(value);
  if (match === null) return Number(value);
  const unit: Record<string, number> = {
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
    Ti: 1024 ** 4,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  };
  return Math.round(Number(match[1]) * (unit[match[2] ?? ''] ?? 1));
}

function environment(ctx: PlayContext, container: IContainer, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const ref = from.configMapRef
      ? `ConfigMap/${from.configMapRef.name}`
      : from.secretRef
        ? `Secret/${from.secretRef.name}`
        : undefined;
    const data = ref !== undefined ? ctx.configMaps.get(ref) : undefined;
    if (data === undefined) {
      if (ref !== undefined) ctx.out.warnings.push(`${where}: envFrom ${ref} is not in the files and is ignored`);
      continue;
    }
    for (const [k, v] of Object.entries(data)) out[`${from.prefix ?? ''}${k}`] = v.toString();
  }
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) out[variable.name] = variable.value;
    else if (variable.valueFrom?.configMapKeyRef !== undefined || variable.valueFrom?.secretKeyRef !== undefined) {
      const ref = variable.valueFrom.configMapKeyRef
        ? { kind: 'ConfigMap', ...variable.valueFrom.configMapKeyRef }
        : { kind: 'Secret', ...variable.valueFrom.secretKeyRef! };
      const value = ctx.configMaps.get(`${ref.kind}/${ref.name}`)?.[ref.key];
      if (value !== undefined) out[variable.name] = value.toString();
      else
        ctx.out.warnings.push(
          `${where}: env ${variable.name}: ${ref.kind}/${ref.name} key ${ref.key} is not in the files`,
        );
    } else if (variable.valueFrom !== undefined) {
      ctx.out.warnings.push(`${where}: env ${variable.name}: only configMapKeyRef and secretKeyRef are played`);
    } else out[variable.name] = '';
  }
  return out;
}

function probeCommand(probe: IProbe): string[] | undefined {
  if (probe.exec?.command !== undefined) return ['CMD', ...probe.exec.command];
  return undefined;
}

function healthcheck(container: IContainer, where: string, warnings: string[]): Record<string, unknown> | undefined {
  const probe = container.readinessProbe ?? container.livenessProbe;
  if (probe === undefined) return undefined;
  const test = probeCommand(probe);
  if (test === undefined) {
    warnings.push(`${where}: only exec probes become healthchecks (httpGet, tcpSocket and grpc are not played)`);
    return undefined;
  }
  const period = probe.periodSeconds ?? 10;
  const startup = container.startupProbe;
  const out: Record<string, unknown> = {
    test,
    interval: `${period}s`,
    timeout: `${probe.timeoutSeconds ?? 1}s`,
    retries: probe.failureThreshold ?? 3,
  };
  const startPeriod =
    (probe.initialDelaySeconds ?? 0) +
    (startup !== undefined ? (startup.periodSeconds ?? 10) * (startup.failureThreshold ?? 3) : 0);
  if (startPeriod > 0) out.start_period = `${startPeriod}s`;
  if (startup !== undefined) out.start_interval = `${startup.periodSeconds ?? 10}s`;
  return out;
}

function volumeMounts(ctx: PlayContext, workload: Workload, container: IContainer, where: string): unknown[] {
  const out: unknown[] = [];
  for (const mount of container.volumeMounts ?? []) {
    const readOnly = mount.readOnly === true;
    if (workload.claimTemplates.includes(mount.name)) {
      const volume = `${mount.name}-${kubeName(workload.name)}`;
      ctx.out.compose.volumes[volume] = {};
      out.push({
        type: 'volume',
        source: volume,
        target: mount.mountPath,
        read_only: readOnly,
        ...subpath(mount.subPath),
      });
      continue;
    }
    const volume = (workload.spec.volumes ?? []).find((v) => v.name === mount.name);
    if (volume === undefined) {
      ctx.out.warnings.push(`${where}: volumeMount ${mount.name} names no volume of the pod and is ignored`);
      continue;
    }
    if (volume.persistentVolumeClaim !== undefined) {
      const claim = volume.persistentVolumeClaim.claimName;
      ctx.out.compose.volumes[claim] = {};
      out.push({
        type: 'volume',
        source: claim,
        target: mount.mountPath,
        read_only: readOnly || volume.persistentVolumeClaim.readOnly === true,
        ...subpath(mount.subPath),
      });
    } else if (volume.emptyDir !== undefined) {
      out.push(
        volume.emptyDir.medium === 'Memory'
          ? { type: 'tmpfs', target: mount.mountPath }
          : { type: 'volume', target: mount.mountPath },
      );
    } else if (volume.hostPath !== undefined) {
      out.push({
        type: 'bind',
        source: volume.hostPath.path,
        target: mount.mountPath,
        read_only: readOnly,
        bind: { create_host_path: volume.hostPath.type === 'DirectoryOrCreate' },
      });
    } else if (volume.configMap !== undefined || volume.secret !== undefined) {
      const ref =
        volume.configMap !== undefined
          ? `ConfigMap/${volume.configMap.name}`
          : `Secret/${volume.secret?.secretName ?? ''}`;
      const data = ctx.configMaps.get(ref);
      if (data === undefined) {
        ctx.out.warnings.push(`${where}: volume ${volume.name}: ${ref} is not in the files and is ignored`);
        continue;
      }
      const items =
        (volume.configMap ?? volume.secret)?.items ??
        Object.keys(data)
          .sort()
          .map((key) => ({ key, path: key, mode: undefined }));
      const defaultMode = (volume.configMap ?? volume.secret)?.defaultMode ?? 0o644;
      const base = path.join(kubeName(workload.name), kubeName(volume.name));
      for (const item of items) {
        const content = data[item.key];
        if (content === undefined) continue;
        ctx.out.files.set(path.join(base, item.path), { content, mode: item.mode ?? defaultMode });
      }
      if (mount.subPath !== undefined) {
        out.push({
          type: 'bind',
          source: path.join(ctx.dir, base, mount.subPath),
          target: mount.mountPath,
          read_only: true,
        });
      } else {
        out.push({ type: 'bind', source: path.join(ctx.dir, base), target: mount.mountPath, read_only: true });
      }
    } else {
      ctx.out.warnings.push(`${where}: volume ${volume.name} of this type is not played and is ignored`);
    }
  }
  return out;
}

function subpath(sub: string | undefined): Record<string, unknown> {
  return sub !== undefined ? { volume: { subpath: sub } } : {};
}

/** A Service: aliases of the services whose pods it selects; LoadBalancer/NodePort ports published on 127.0.0.1. */
function playService(ctx: PlayContext, service: IService, where: string): void {
  const name = service.metadata?.name ?? '';
  const selector = service.spec?.selector ?? {};
  const selected = ctx.workloads.filter(
    (w) => Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => w.labels[k] === v),
  );
  if (selected.length === 0) {
    ctx.out.warnings.push(`${where}: selects no pod in the files and is ignored`);
    return;
  }
  const type = service.spec?.type ?? 'ClusterIP';
  for (const workload of selected) {
    const compose = ctx.out.compose.services[mainService(workload)];
    if (compose === undefined) continue;
    if (name !== mainService(workload)) {
      const networks = (compose.networks ?? { default: { aliases: [] } }) as { default: { aliases: string[] } };
      if (!networks.default.aliases.includes(name)) networks.default.aliases.push(name);
      compose.networks = networks;
    }
    for (const port of service.spec?.ports ?? []) {
      const target = resolveTarget(workload, port.targetPort ?? port.port);
      if (target === undefined) {
        ctx.out.warnings.push(`${where}: targetPort ${String(port.targetPort)} names no container port and is ignored`);
        continue;
      }
      if (type === 'LoadBalancer' || type === 'NodePort') {
        const host = type === 'NodePort' && port.nodePort !== undefined ? port.nodePort : port.port;
        const ports = (compose.ports ?? []) as string[];
        const entry = `127.0.0.1:${host}:${target}/${(port.protocol ?? 'TCP').toLowerCase()}`;
        if (!ports.includes(entry)) ports.push(entry);
        compose.ports = ports;
      } else if (port.port !== target) {
        ctx.out.warnings.push(
          `${where}: port ${port.port} → ${target}: only the target port answers under the Service's name`,
        );
      }
    }
  }
}

function resolveTarget(workload: Workload, target: number | string): number | undefined {
  if (typeof target === 'number') return target;
  if (/^\d+$/.test(target)) return Number(target);
  for (const c of workload.spec.containers)
    for (const p of c.ports ?? []) if (p.name === target) return p.containerPort;
  return undefined;
}

export type { KubeObject };
