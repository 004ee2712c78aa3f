import type { EngineErrorKind } from '../../engine/errors.js';
import type { ErrorKind } from '../errors.js';

/** Exit codes, documented in docs/exit-codes.md. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 64,
  config: 65,
  permission: 77,
  runtimeFailure: 125,
  notExecutable: 126,
  notFound: 127,
  interrupted: 130,
} as const;

export function exitCodeOfKind(kind: ErrorKind | EngineErrorKind): number {
  switch (kind) {
    case 'usage':
    case 'invalid':
      return ExitCode.usage;
    case 'config':
      return ExitCode.config;
    case 'permission':
      return ExitCode.permission;
    case 'not-found':
    case 'conflict':
    case 'runtime':
    case 'unsupported':
    case 'internal':
      return ExitCode.failure;
  }
}
