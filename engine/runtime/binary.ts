import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EngineError } from '../errors.js';

let cached: string | undefined;

/**
 * Path of the native helper built by `npm install` (native/build/tsfig-runtime), found from this module whether it
 * runs from the sources (tsx) or from dist/. TSFIG_RUNTIME overrides it (tests of a sanitizer build, for example).
 */
export function runtimeBinary(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TSFIG_RUNTIME !== undefined && env.TSFIG_RUNTIME !== '') return env.TSFIG_RUNTIME;
  if (cached !== undefined) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'native', 'build', 'tsfig-runtime');
    if (existsSync(candidate)) {
      cached = candidate;
      return candidate;
    }
    dir = path.dirname(dir);
  }
  throw new EngineError('internal', 'the native helper native/build/tsfig-runtime is missing', {
    hint: 'build it with: npm run build:native',
  });
}
