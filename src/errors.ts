/**
 * Errors of the orchestrator. `kind` is closed and decides the exit code (docs/exit-codes.md); `message` is one
 * lowercase line naming the object; `hint` is the next action, with an exact command where there is one.
 */
export type ErrorKind = 'usage' | 'config' | 'not-found' | 'conflict' | 'permission' | 'runtime' | 'internal';

export interface SourceRef {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

export class TsfigError extends Error {
  readonly kind: ErrorKind;
  readonly hint: string | undefined;
  readonly source: SourceRef | undefined;
  /** Overrides the exit code derived from kind (e.g. a container's exit code passed through). */
  readonly exitCode: number | undefined;

  constructor(
    kind: ErrorKind,
    message: string,
    options: { hint?: string; cause?: unknown; source?: SourceRef; exitCode?: number } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'TsfigError';
    this.kind = kind;
    this.hint = options.hint;
    this.source = options.source;
    this.exitCode = options.exitCode;
  }
}
