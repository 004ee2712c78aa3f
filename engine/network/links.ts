/** An exposed port of the linked container: `6379/tcp`. */
export interface ExposedPort {
  readonly port: number;
  readonly proto: string;
}

export interface LinkEnvOptions {
  /** Link name as Docker records it: `/<parent container>/<alias>` (the alias is its last component). */
  readonly name: string;
  /** Address of the linked container. */
  readonly ip: string;
  readonly exposedPorts: readonly ExposedPort[];
  /** The linked container's environment (`KEY=value`); HOME, PATH and HOSTNAME are left out. */
  readonly env?: readonly string[];
}

function byTcpFirst(a: ExposedPort, b: ExposedPort): number {
  if (a.proto === b.proto) return a.port - b.port;
  if (a.proto === 'tcp') return -1;
  if (b.proto === 'tcp') return 1;
  return a.proto < b.proto ? -1 : 1;
}

/**
 * Fig-style link variables, in Docker's order (daemon/links): `<ALIAS>_PORT` for the first port (tcp first, lowest
 * number), then per port `<ALIAS>_PORT_<n>_<PROTO>`, `..._ADDR`, `..._PORT`, `..._PROTO`; runs of consecutive ports
 * of one protocol add `..._START`, `..._PORT_START`, `..._END`, `..._PORT_END` on the first port of the run;
 * `<ALIAS>_NAME`; `<ALIAS>_ENV_<KEY>` for the linked container's environment. ALIAS is upper-case with `-` → `_`.
 */
export function linkEnv(options: LinkEnvOptions): string[] {
  const alias = (options.name.split('/').pop() ?? '').toUpperCase().replace(/-/g, '_');
  const ip = options.ip;
  const ports = [...options.exposedPorts].sort(byTcpFirst);
  const env: string[] = [];
  const prefixOf = (p: ExposedPort): string => `${alias}_PORT_${p.port}_${p.proto.toUpperCase()}`;
  let start: ExposedPort | undefined;
  let end: ExposedPort | undefined;
  ports.forEach((p, i) => {
    if (i === 0) {
      start = p;
      end = p;
      env.push(`${alias}_PORT=${p.proto}://${ip}:${p.port}`);
    }
    const prefix = prefixOf(p);
    env.push(`${prefix}=${p.proto}://${ip}:${p.port}`, `${prefix}_ADDR=${ip}`, `${prefix}_PORT=${p.port}`);
    env.push(`${prefix}_PROTO=${p.proto}`);
    if (end !== undefined && p.port === end.port + 1 && p.proto === end.proto) {
      end = p;
      if (i < ports.length - 1) return;
    }
    if (start !== undefined && end !== undefined && (start.port !== end.port || start.proto !== end.proto)) {
      const first = prefixOf(start);
      env.push(`${first}_START=${start.proto}://${ip}:${start.port}`, `${first}_PORT_START=${start.port}`);
      env.push(`${first}_END=${end.proto}://${ip}:${end.port}`, `${first}_PORT_END=${end.port}`);
    }
    start = p;
    end = p;
  });
  env.push(`${alias}_NAME=${options.name}`);
  for (const entry of options.env ?? []) {
    const eq = entry.indexOf('=');
    if (eq < 0) continue;
    const key = entry.slice(0, eq);
    // docker's Config.Env has no HOSTNAME (the runtime sets it); a tsfig container's process env does
    if (key === 'HOME' || key === 'PATH' || key === 'HOSTNAME') continue;
    env.push(`${alias}_ENV_${key}=${entry.slice(eq + 1)}`);
  }
  return env;
}
