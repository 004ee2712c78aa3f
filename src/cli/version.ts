import { readFileSync } from 'node:fs';

/** package.json's version, defined by scripts/bundle.js in the bundle (no file to read there). */
declare const TSFIG_BUNDLED_VERSION: string | undefined;

/** The package version, read once from package.json next to the sources or the build. */
export function packageVersion(): string {
  if (typeof TSFIG_BUNDLED_VERSION === 'string') return TSFIG_BUNDLED_VERSION;
  for (const candidate of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(candidate, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'tsfig' && pkg.version !== undefined) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0';
}
