import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ServiceVolume } from '../../src/model/project.js';
import { containerName, dependsOnLabel, portSpecFlag, serviceContainerSpec } from '../../src/planner/container-spec.js';
import { toObservedContainer } from '../../src/planner/observed.js';
import { defaultServiceNetwork, project, service } from '../helpers/project.js';

function mount(overrides: Partial<ServiceVolume>): ServiceVolume {
  return {
    type: 'volume',
    source: undefined,
    target: '/data',
    read_only: false,
    consistency: undefined,
    bind: undefined,
    volume: undefined,
    tmpfs: undefined,
    image: undefined,
    ...overrides,
  };
}

test('containers are named <project>-<service>-<n> unless container_name is set', () => {
  const p = project([service('web')]);
  assert.equal(containerName(p, service('web'), 2), 'tsfig-web-2');
  assert.equal(containerName(p, service('web', { container_name: 'front' }), 1), 'front');
});

test("the container carries compose v2 labels with the io.tsfig prefix and compose's own, over the user labels", () => {
  const db = service('db');
  const web = service('web', {
    labels: { team: 'a', 'io.tsfig.project': 'spoofed', 'com.docker.compose.project': 'spoofed' },
    depends_on: { db: { condition: 'service_healthy', required: true, restart: true } },
    links: ['cache:redis'],
  });
  const p = project([web, db, service('cache')]);
  const { spec } = serviceContainerSpec(p, web, 3, { configHash: 'abc' });
  assert.deepEqual(spec.container.labels, {
    team: 'a',
    'io.tsfig.project': 'tsfig',
    'io.tsfig.service': 'web',
    'io.tsfig.container-number': '3',
    'io.tsfig.config-hash': 'abc',
    'io.tsfig.oneoff': 'False',
    'io.tsfig.project.config_files': '/srv/app/tsfig.yaml',
    'io.tsfig.project.working_dir': '/srv/app',
    'io.tsfig.depends_on': 'cache:service_started:false,db:service_healthy:true',
    // what scripts written for compose filter on (docker ps --filter label=com.docker.compose.project=tsfig)
    'com.docker.compose.project': 'tsfig',
    'com.docker.compose.service': 'web',
    'com.docker.compose.container-number': '3',
    'com.docker.compose.config-hash': 'abc',
    'com.docker.compose.oneoff': 'False',
    'com.docker.compose.project.config_files': '/srv/app/tsfig.yaml',
    'com.docker.compose.project.working_dir': '/srv/app',
    'com.docker.compose.depends_on': 'cache:service_started:false,db:service_healthy:true',
  });
  assert.equal(dependsOnLabel(service('x')), '');
});

test('process settings map to the engine spec; a variable without a value is passed bare (it unsets the image value)', () => {
  const web = service('web', {
    command: ['serve', '--port', '80'],
    entrypoint: ['/init'],
    environment: { A: '1', EMPTY: '', UNSET: null },
    user: '1000:1000',
    working_dir: '/app',
    hostname: 'web-host',
    tty: true,
    stdin_open: true,
    init: true,
    stop_signal: 'SIGINT',
    stop_grace_period: 1500,
    extra_hosts: { 'db.local': ['10.0.0.2'], 'api.local': ['10.0.0.3'] },
  });
  const { spec, warnings } = serviceContainerSpec(project([web]), web, 1, { configHash: 'h' });
  const { labels: _labels, ...container } = spec.container;
  assert.deepEqual(container, {
    name: 'tsfig-web-1',
    image: 'busybox:latest',
    cmd: ['serve', '--port', '80'],
    entrypoint: ['/init'],
    env: ['A=1', 'EMPTY=', 'UNSET'],
    workingDir: '/app',
    user: '1000:1000',
    hostname: 'web-host',
    tty: true,
    openStdin: true,
    init: true,
    stopSignal: 'SIGINT',
    stopTimeout: 2,
    extraHosts: ['10.0.0.3\tapi.local', '10.0.0.2\tdb.local'],
  });
  assert.deepEqual(warnings, []);
});

test('resource limits come from the service keys, else from deploy.resources.limits', () => {
  const web = service('web', {
    mem_limit: 64 * 1024 * 1024,
    memswap_limit: -1,
    pids_limit: 100,
    ulimits: { nproc: { soft: 10, hard: 20 }, nofile: { soft: 1024, hard: 2048 } },
    sysctls: { 'net.core.somaxconn': '1024' },
    cap_add: ['NET_ADMIN'],
    cap_drop: ['ALL'],
    privileged: true,
    read_only: true,
    deploy: {
      mode: undefined,
      replicas: undefined,
      labels: {},
      resources: { limits: { cpus: 0.5, memory: 1, pids: 1 }, reservations: undefined },
      restart_policy: undefined,
      other: {},
    },
    logging: { driver: 'json-file', options: { 'max-size': '10m', 'max-file': '3' } },
    other: { cpu_shares: 512, security_opt: ['no-new-privileges:true'], group_add: ['audio'] },
  });
  const { spec, warnings } = serviceContainerSpec(project([web]), web, 1, { configHash: 'h' });
  const c = spec.container;
  assert.equal(c.memory, 64 * 1024 * 1024);
  assert.equal(c.memorySwap, -1);
  assert.equal(c.nanoCpus, 500_000_000);
  assert.equal(c.pidsLimit, 100);
  assert.equal(c.cpuShares, 512);
  assert.deepEqual(c.ulimits, [
    { name: 'nofile', soft: 1024, hard: 2048 },
    { name: 'nproc', soft: 10, hard: 20 },
  ]);
  assert.deepEqual(c.sysctls, { 'net.core.somaxconn': '1024' });
  assert.deepEqual([c.capAdd, c.capDrop, c.privileged, c.readonlyRootfs], [['NET_ADMIN'], ['ALL'], true, true]);
  assert.deepEqual([c.noNewPrivileges, c.groupAdd], [true, ['audio']]);
  assert.deepEqual([c.logMaxSize, c.logMaxFiles], [10 * 1024 * 1024, 3]);
  assert.deepEqual(warnings, []);
});

test('service volumes become mount specs: binds, project volumes by host name, anonymous, tmpfs', () => {
  const web = service('web', {
    volumes: [
      mount({
        type: 'bind',
        source: '/srv/app/src',
        target: '/app',
        read_only: true,
        bind: { propagation: undefined, create_host_path: true, selinux: undefined, recursive: undefined },
      }),
      mount({ source: 'data', target: '/data', volume: { nocopy: true, subpath: undefined } }),
      mount({ source: undefined, target: '/cache' }),
      mount({ type: 'tmpfs', target: '/scratch', tmpfs: { size: 1024, mode: 0o1777 } }),
    ],
    tmpfs: ['/run:size=64m,mode=755'],
    volumes_from: ['db:ro', 'container:legacy'],
  });
  const p = project([web, service('db')], { volumes: ['data'] });
  const { spec } = serviceContainerSpec(p, web, 1, { configHash: 'h' });
  assert.deepEqual(spec.mounts, [
    {
      type: 'bind',
      source: '/srv/app/src',
      target: '/app',
      readonly: true,
      propagation: 'rprivate',
      createHostPath: true,
      origin: 'service "web" volumes[0]',
      notes: [],
    },
    {
      type: 'volume',
      source: 'tsfig_data',
      target: '/data',
      readonly: false,
      nocopy: true,
      origin: 'service "web" volumes[1]',
      notes: [],
    },
    { type: 'volume', target: '/cache', readonly: false, nocopy: false, origin: 'service "web" volumes[2]', notes: [] },
    {
      type: 'tmpfs',
      target: '/scratch',
      readonly: false,
      origin: 'service "web" volumes[3]',
      notes: [],
      tmpfs: { flags: {}, size: '1024', mode: 0o1777, data: [] },
    },
    {
      type: 'tmpfs',
      target: '/run',
      readonly: false,
      origin: 'service "web" tmpfs[0]',
      notes: [],
      tmpfs: { flags: {}, size: String(64 * 1024 * 1024), mode: 0o755, data: [] },
    },
  ]);
  assert.deepEqual(spec.volumesFrom, [
    { container: 'tsfig-db-1', mode: 'ro' },
    { container: 'legacy', mode: 'rw' },
  ]);
  assert.deepEqual(spec.volumeLabels, { 'io.tsfig.project': 'tsfig', 'com.docker.compose.project': 'tsfig' });
});

test('networks are joined by host name in priority order, with the service name as an alias', () => {
  const web = service('web', {
    networks: {
      back: { ...defaultServiceNetwork(), aliases: ['api'], ipv4_address: '172.30.0.5' },
      front: { ...defaultServiceNetwork(), priority: 10 },
    },
  });
  const p = project([web], { networks: ['back', 'front'] });
  const { spec } = serviceContainerSpec(p, web, 1, { configHash: 'h' });
  assert.deepEqual(spec.network, {
    mode: 'networks',
    networks: [
      { network: 'tsfig_front', aliases: ['web'], ipv4Address: undefined, macAddress: undefined },
      { network: 'tsfig_back', aliases: ['web', 'api'], ipv4Address: '172.30.0.5', macAddress: undefined },
    ],
  });
});

test('network_mode maps to host, none, another container by name, or the default bridge', () => {
  const p = project([service('vpn')]);
  const modes = ['host', 'none', 'service:vpn', 'container:abc', 'bridge'].map(
    (mode) => serviceContainerSpec(p, service('web', { network_mode: mode }), 1, { configHash: 'h' }).spec.network,
  );
  assert.deepEqual(modes, [
    { mode: 'host' },
    { mode: 'none' },
    { mode: 'container', container: 'tsfig-vpn-1' },
    { mode: 'container', container: 'abc' },
    { mode: 'networks', networks: [{ network: 'bridge', aliases: [], ipv4Address: undefined, macAddress: undefined }] },
  ]);
});

test('published ports become the network layer port specs', () => {
  const port = { mode: 'ingress', name: undefined, app_protocol: undefined };
  const web = service('web', {
    ports: [
      { ...port, target: 80, published: '8080', host_ip: '127.0.0.1', protocol: 'tcp' },
      { ...port, target: 53, published: undefined, host_ip: undefined, protocol: 'udp' },
      { ...port, target: 9000, published: '9000-9010', host_ip: undefined, protocol: 'tcp' },
    ],
  });
  const { spec } = serviceContainerSpec(project([web]), web, 1, { configHash: 'h' });
  assert.deepEqual(spec.ports.map(portSpecFlag), ['127.0.0.1:8080:80/tcp', '53/udp', '9000-9010:9000/tcp']);
  assert.deepEqual(spec.ports[0], {
    hostIp: '127.0.0.1',
    hostPorts: { start: 8080, end: 8080 },
    containerPorts: { start: 80, end: 80 },
    proto: 'tcp',
  });
});

test('restart policies and healthchecks are passed on for the monitor', () => {
  const web = service('web', {
    restart: 'on-failure:3',
    healthcheck: {
      test: ['CMD-SHELL', 'true'],
      interval: 1000,
      timeout: 500,
      retries: 2,
      start_period: 0,
      start_interval: undefined,
      disable: false,
    },
  });
  const { spec } = serviceContainerSpec(project([web]), web, 1, { configHash: 'h' });
  assert.deepEqual(spec.restart, { name: 'on-failure', maxRetries: 3 });
  assert.deepEqual(spec.healthcheck, {
    test: ['CMD-SHELL', 'true'],
    intervalMs: 1000,
    timeoutMs: 500,
    retries: 2,
    startPeriodMs: 0,
    startIntervalMs: undefined,
  });
  const disabled = service('web', { healthcheck: { ...web.healthcheck!, disable: true } });
  assert.equal(serviceContainerSpec(project([disabled]), disabled, 1, { configHash: 'h' }).spec.healthcheck, undefined);
});

test('every key the engine cannot honour yet is named in a warning', () => {
  const web = service('web', {
    dns: ['1.1.1.1'],
    logging: { driver: 'syslog', options: { tag: 'x' } },
    network_mode: 'ns:/run/netns/other',
    other: { ipc: 'host', security_opt: ['apparmor=x'] },
  });
  const { warnings } = serviceContainerSpec(project([web]), web, 1, { configHash: 'h' });
  assert.deepEqual(warnings, [
    'services.web.security_opt "apparmor=x" is not supported yet and is ignored',
    'services.web.logging.driver "syslog" is not supported yet: json-file is used',
    'services.web.logging.options.tag is not supported yet and is ignored',
    'services.web.network_mode "ns:/run/netns/other" is not supported yet: the container gets no network',
    'services.web.dns is not supported yet and is ignored',
    'services.web.ipc is not supported yet and is ignored',
  ]);
});

test('engine containers map to observed containers through their labels; unlabelled ones are not ours', () => {
  const record = {
    id: 'c0ffee',
    name: 'tsfig-web-2',
    created: '2026-01-01T00:00:00.000Z',
    imageId: 'sha256:abc',
    labels: {
      'io.tsfig.project': 'tsfig',
      'io.tsfig.service': 'web',
      'io.tsfig.container-number': '2',
      'io.tsfig.config-hash': 'h',
      'io.tsfig.oneoff': 'False',
    },
    mounts: [
      { destination: '/data', type: 'bind' as const, source: '/v/x', options: [], volumeName: 'x', anonymous: true },
      { destination: '/app', type: 'bind' as const, source: '/srv/app', options: [] },
    ],
    spec: { image: 'busybox:latest' },
  };
  const state = { status: 'exited' as const, running: false, exitCode: 2 };
  assert.deepEqual(toObservedContainer(record, state), {
    id: 'c0ffee',
    name: 'tsfig-web-2',
    project: 'tsfig',
    service: 'web',
    number: 2,
    oneoff: false,
    configHash: 'h',
    running: false,
    paused: false,
    status: 'exited',
    exitCode: 2,
    imageId: 'sha256:abc',
    labels: record.labels,
    created: '2026-01-01T00:00:00.000Z',
    mounts: [
      { destination: '/data', volumeName: 'x', anonymous: true },
      { destination: '/app', volumeName: undefined, anonymous: false },
    ],
    spec: { image: 'busybox:latest' },
  });
  assert.equal(toObservedContainer({ ...record, labels: {} }, state), undefined);
});

test('a link carries the linked service expose (ranges expanded) and ports targets, under its three aliases', () => {
  const db = service('db', {
    expose: ['5432', '7000-7001/udp'],
    ports: [{ target: 8080, published: '18080', host_ip: undefined, protocol: 'tcp' }] as never,
  });
  const web = service('web', { links: ['db', 'cache:redis'] });
  const p = project([web, db, service('cache')]);
  const { spec } = serviceContainerSpec(p, web, 1, { configHash: 'abc' });
  const exposedPorts = ['5432/tcp', '7000/udp', '7001/udp', '8080/tcp'];
  // each under its alias, <service>-1 and <project>-<service>-1, as compose v2 links them
  const networks = ['tsfig_default'];
  assert.deepEqual(spec.links, [
    { container: 'tsfig-db-1', alias: 'db', networks, exposedPorts },
    { container: 'tsfig-db-1', alias: 'db-1', networks, exposedPorts },
    { container: 'tsfig-db-1', alias: 'tsfig-db-1', networks, exposedPorts },
    { container: 'tsfig-cache-1', alias: 'redis', networks },
    { container: 'tsfig-cache-1', alias: 'cache-1', networks },
    { container: 'tsfig-cache-1', alias: 'tsfig-cache-1', networks },
  ]);
});

test('a link is reached on the networks both services join, in the linking one order; none shared, none', () => {
  const net = (...keys: string[]) => Object.fromEntries(keys.map((key) => [key, undefined])) as never;
  const web = service('web', { links: ['db', 'alone'], networks: net('front', 'back', 'mid') });
  const db = service('db', { networks: net('mid', 'back') });
  const alone = service('alone', { networks: net('front2') });
  const p = project([web, db, alone]);
  const { spec } = serviceContainerSpec(p, web, 1, { configHash: 'abc' });
  assert.deepEqual(spec.links?.find((link) => link.alias === 'db')?.networks, ['tsfig_back', 'tsfig_mid']);
  assert.deepEqual(spec.links?.find((link) => link.alias === 'alone')?.networks, []);
});
