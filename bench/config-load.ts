/**
 * Load + validate + normalise time of a generated 300-service project (compose users report minutes for such
 * files; the target is under 300 ms). Run: node --import tsx bench/config-load.ts [services] [runs] [--write]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { loadProject } from '../src/config/load.js';
import { updateSection } from './report.js';

function generate(count: number): string {
  const lines = [
    'name: bench',
    'x-defaults: &defaults',
    '  restart: unless-stopped',
    '  logging:',
    '    driver: json-file',
    '    options: { max-size: 10m }',
    'services:',
  ];
  for (let i = 0; i < count; i++) {
    const next = (i + 1) % count;
    lines.push(
      `  svc${i}:`,
      '    <<: *defaults',
      `    image: "registry.example.com/team/svc${i}:\${TAG:-1.0.${i}}"`,
      `    command: ["serve", "--port", "${8000 + i}"]`,
      '    environment:',
      `      SERVICE_NAME: svc${i}`,
      '      LOG_LEVEL: ${LOG_LEVEL:-info}',
      `      PEER: svc${next}`,
      '    ports:',
      `      - "${10000 + i}:${8000 + i}"`,
      '    volumes:',
      `      - data${i % 10}:/var/lib/svc`,
      `      - ./conf/svc${i}:/etc/svc:ro`,
      '    networks: [front, back]',
      '    healthcheck:',
      `      test: ["CMD", "curl", "-f", "http://localhost:${8000 + i}/health"]`,
      '      interval: 30s',
      '      timeout: 5s',
      '      retries: 3',
      '    labels:',
      `      com.example.index: "${i}"`,
      '    deploy:',
      '      resources:',
      '        limits: { cpus: "0.5", memory: 256m }',
      ...(i > 0 ? ['    depends_on:', `      svc${i - 1}:`, '        condition: service_started'] : []),
    );
  }
  lines.push('networks:', '  front:', '  back:', 'volumes:');
  for (let v = 0; v < 10; v++) lines.push(`  data${v}:`);
  return `${lines.join('\n')}\n`;
}

const services = Number(process.argv[2] ?? 300);
const runs = Number(process.argv[3] ?? 15);
const dir = mkdtempSync(path.join(tmpdir(), 'tsfig-bench-'));
try {
  const text = generate(services);
  writeFileSync(path.join(dir, 'compose.yaml'), text);
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    const start = performance.now();
    const { project } = loadProject({ cwd: dir, env: { TAG: 'bench' } });
    times.push(performance.now() - start);
    if (Object.keys(project.services).length !== services) throw new Error('wrong number of services');
  }
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
  const summary =
    `config-load: ${services} services, ${(text.length / 1024).toFixed(0)} KiB, ${runs} runs: ` +
    `first ${(times[0] ?? 0).toFixed(1)} ms (includes schema compilation), median ${median.toFixed(1)} ms, ` +
    `min ${(sorted[0] ?? 0).toFixed(1)} ms (target < 300 ms)`;
  process.stdout.write(`${summary}\n`);
  if (process.argv.includes('--write')) {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    updateSection(
      'Project file: load + validate + normalise',
      [
        `Command: \`node --import tsx bench/config-load.ts ${services} ${runs} --write\``,
        `Commit ${commit}, ${new Date().toISOString().slice(0, 10)}, load average ${loadavg()[0]?.toFixed(1) ?? '?'} when run.`,
        '',
        summary,
        '',
        `Samples (ms): ${times.map((time) => time.toFixed(1)).join(', ')}`,
      ].join('\n'),
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
