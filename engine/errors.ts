/**
 * Errors raised by the engine. `kind` is closed and drives the CLI's exit code; `message` is one lowercase line for
 * people naming the object; `hint` is the next thing to do.
 */
export type EngineErrorKind =
  'not-found' | 'conflict' | 'invalid' | 'permission' | 'runtime' | 'unsupported' | 'internal';

export interface EngineErrorOptions {
  hint?: string | undefined;
  cause?: unknown;
  /** Step of the native runtime that failed (`mount /proc`), when the error came from it. */
  step?: string | undefined;
  /** errno of the failing call, when known. */
  errno?: number | undefined;
  /** Exit code `docker run` would use for this failure (125, 126, 127). */
  exitCode?: number | undefined;
}

export class EngineError extends Error {
  readonly kind: EngineErrorKind;
  readonly hint: string | undefined;
  readonly step: string | undefined;
  readonly errno: number | undefined;
  readonly exitCode: number | undefined;

  constructor(kind: EngineErrorKind, message: string, options: EngineErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = 'EngineError';
    this.kind = kind;
    this.hint = options.hint;
    this.step = options.step;
    this.errno = options.errno;
    this.exitCode = options.exitCode;
  }
}

export function isEngineError(error: unknown, kind?: EngineErrorKind): error is EngineError {
  return error instanceof EngineError && (kind === undefined || error.kind === kind);
}

/** True for a Node system error with the given code (`ENOENT`, `EEXIST`...). */
export function isErrno(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}
