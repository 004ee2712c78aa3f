/**
 * What the orchestrator reports while it works: a union discriminated by `kind`, emitted into an EventSink that the
 * CLI's renderers (plain, JSON, quiet, TUI) consume. Core code never prints.
 */

/** The op an event is about, with what renderers show. */
export interface OpEventRef {
  readonly id: number;
  /** An OpKind value (`container.create`). */
  readonly kind: string;
  /** `service:web:1`, `network:default`, `volume:data`. */
  readonly resource: string;
  /** Host name of the object: `tsfig-web-1`, `tsfig_default`. */
  readonly target: string;
  /** The planner's human reason, for display only. */
  readonly reason: string;
}

/**
 * A layer's state during a pull, in order: `waiting` (queued), `downloading`, `verified` (downloaded and its digest
 * checked), `extracting`, `done`; `exists` when the store already has it.
 */
export type LayerState = 'exists' | 'waiting' | 'downloading' | 'verified' | 'extracting' | 'done';

/** Events of the images `up` pulls and builds before it plans (`src/cli/compose/pull.ts`, `build.ts`). */
export type ImageEvent =
  /** One image (pulled once for every service that uses it). */
  | { readonly kind: 'pull.start'; readonly image: string; readonly services: readonly string[] }
  /** A layer changed state or downloaded more bytes (the engine reports every 512 KiB). */
  | {
      readonly kind: 'pull.progress';
      readonly image: string;
      /** The layer's digest without `sha256:`, first 12 hex digits. */
      readonly layer: string;
      readonly state: LayerState;
      /** Bytes downloaded (compressed). */
      readonly current: number;
      /** The layer's compressed size. */
      readonly total: number;
    }
  | {
      readonly kind: 'pull.done';
      readonly image: string;
      readonly services: readonly string[];
      readonly status: 'downloaded' | 'up-to-date';
    }
  /** A pull that failed without stopping `up` (the service builds instead, or failures are ignored). */
  | {
      readonly kind: 'pull.error';
      readonly image: string;
      readonly services: readonly string[];
      readonly message: string;
    }
  | { readonly kind: 'build.start'; readonly service: string; readonly image: string }
  /** A Dockerfile instruction starts: `[step/total] text`. */
  | {
      readonly kind: 'build.step';
      readonly service: string;
      readonly step: number;
      readonly total: number;
      readonly text: string;
    }
  | {
      readonly kind: 'build.step-done';
      readonly service: string;
      readonly step: number;
      readonly cached: boolean;
      readonly durationMs: number;
    }
  /** Output of a RUN step (one chunk, possibly several lines). */
  | {
      readonly kind: 'build.output';
      readonly service: string;
      readonly step: number;
      readonly stream: 'stdout' | 'stderr';
      readonly text: string;
    }
  | {
      readonly kind: 'build.done';
      readonly service: string;
      readonly image: string;
      readonly steps: number;
      readonly cachedSteps: number;
      readonly durationMs: number;
    };

export type TsfigEvent =
  | ImageEvent
  | { readonly kind: 'plan.start'; readonly project: string; readonly total: number }
  | { readonly kind: 'op.start'; readonly op: OpEventRef }
  | {
      readonly kind: 'op.done';
      readonly op: OpEventRef;
      /** Set for `container.create`. */
      readonly containerId?: string;
      /** Set for `container.wait-completed`. */
      readonly exitCode?: number;
      /** Set for `image.push` and `artifact.push`: the digest of the manifest pushed. */
      readonly digest?: string;
      /** Set for `image.commit`: the new image's id. */
      readonly imageId?: string;
    }
  | {
      readonly kind: 'op.error';
      readonly op: OpEventRef;
      readonly message: string;
      readonly error: unknown;
      /** True when the failure does not stop the plan (shown as a warning). */
      readonly bestEffort: boolean;
    }
  /** The op never started because the plan was aborted (a failure, or Ctrl-C). */
  | { readonly kind: 'op.skipped'; readonly op: OpEventRef }
  | { readonly kind: 'warning'; readonly message: string }
  /** Something the user should know that is not a problem (a bind source created, a volume kept in use). */
  | { readonly kind: 'note'; readonly message: string }
  | {
      readonly kind: 'plan.done';
      readonly project: string;
      readonly ok: boolean;
      readonly done: number;
      readonly failed: number;
      readonly skipped: number;
    };

export type TsfigEventKind = TsfigEvent['kind'];

/** Receives events in the order they happen. Must not throw; must not block. */
export interface EventSink {
  emit(event: TsfigEvent): void;
}

/** Drops every event. */
export const nullSink: EventSink = { emit: () => undefined };

/** Keeps every event (tests, and `--progress json` buffering). */
export class RecordingSink implements EventSink {
  readonly events: TsfigEvent[] = [];

  emit(event: TsfigEvent): void {
    this.events.push(event);
  }

  /** The events of one kind, typed. */
  ofKind<K extends TsfigEventKind>(kind: K): Extract<TsfigEvent, { kind: K }>[] {
    return this.events.filter((event): event is Extract<TsfigEvent, { kind: K }> => event.kind === kind);
  }
}
