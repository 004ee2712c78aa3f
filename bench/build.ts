/**
 * Image build timings (issue 7): a cold build and fully cached rebuilds of the examples' app image
 * (examples/redis-app/app as the context) FROM tsfig/debian:bookworm when /var/cache/tsfig/debian-bookworm.tar
 * exists, else FROM tsfig/busybox:latest. Target: a fully cached rebuild under 300 ms. Each run uses its own engine
 * root, removed at the end. `--report` writes the "Image build" section of BENCHMARKS.md.
 *
 *   sudo node --import tsx bench/build.ts [--runs 10] [--report]
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Builder } from '../engine/build/builder.js';
import { BUSYBOX_TAR, DEBIAN_TAR, benchEngine, nearestRank, option, requireRoot } from './harness.js';
import { REPO, updateSection } from './report.js';

const TARGET_MS = 300;

const runs = Number(option('--runs', '10'));
const report = process.argv.includes('--report');
const debian = existsSync(DEBIAN_TAR);
const base = debian ? 'tsfig/debian:bookworm' : 'tsfig/busybox:latest';
const context = path.join(REPO, 'examples', 'redis-app', 'app');

const dockerfile = debian
  ? `FROM ${base} AS check
WORKDIR /src
COPY app.py .
RUN python3 -m py_compile app.py && echo compiled

FROM ${base}
ARG PORT=8000
ENV REDIS_HOST=redis PORT=\${PORT} PYTHONUNBUFFERED=1
WORKDIR /app
COPY --from=check /src/app.py ./
RUN useradd --system --uid 999 app && chown -R app /app
USER app
EXPOSE \${PORT}
HEALTHCHECK --interval=5s CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["python3", "app.py"]
`
  : `FROM ${base}
ARG PORT=8000
ENV REDIS_HOST=redis PORT=\${PORT}
WORKDIR /app
COPY app.py ./
RUN echo 'app:x:999:999::/app:/bin/sh' >> /etc/passwd && chown -R 999 /app
USER app
EXPOSE \${PORT}
CMD ["cat", "app.py"]
`;

async function main(): Promise<void> {
  requireRoot('run as root: builds start containers');
  const bench = await benchEngine('build');
  try {
    await bench.importImage(debian ? DEBIAN_TAR : BUSYBOX_TAR, base);
    const builder = new Builder(bench.engine);
    const options = { contextDir: context, dockerfileInline: dockerfile, tags: ['bench/app:latest'] };
    let started = performance.now();
    const cold = await builder.build(options);
    const coldMs = performance.now() - started;
    const stages = (dockerfile.match(/^FROM /gm) ?? []).length; // FROM steps are never cache hits
    const cached: number[] = [];
    for (let i = 0; i < runs; i++) {
      started = performance.now();
      const again = await builder.build(options);
      cached.push(performance.now() - started);
      if (again.imageId !== cold.imageId || again.cachedSteps !== again.steps - stages) {
        throw new Error(`rebuild ${i + 1} was not fully cached (${again.cachedSteps}/${again.steps} steps)`);
      }
    }
    const cachedMedian = nearestRank(cached, 0.5); // the upper median for an even count, as in earlier sections
    const lines = [
      `base ${base}, ${cold.steps} steps, context ${path.relative(REPO, context)}`,
      `cold build            ${coldMs.toFixed(0)} ms`,
      `cached rebuild median ${cachedMedian.toFixed(1)} ms (min ${Math.min(...cached).toFixed(1)}, max ${Math.max(...cached).toFixed(1)}, ${runs} runs) — target < ${TARGET_MS} ms: ${cachedMedian < TARGET_MS ? 'met' : 'MISSED'}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (report) {
      updateSection(
        'Image build',
        [
          '`sudo node --import tsx bench/build.ts --report` (engine Builder, in-process; `tsfig image build` adds the CLI start-up).',
          '',
          '| base | steps | cold build | fully cached rebuild (median) | target |',
          '| --- | --- | --- | --- | --- |',
          `| ${base} | ${cold.steps} | ${coldMs.toFixed(0)} ms | ${cachedMedian.toFixed(1)} ms | < ${TARGET_MS} ms |`,
        ].join('\n'),
      );
    }
  } finally {
    await bench.cleanup();
  }
}

await main();
