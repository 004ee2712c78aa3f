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

export type TsfigEvent =
  | { readonly kind: 'plan.start'; readonly project: string; readonly total: number }
  | { readonly kind: 'op.start'; readonly op: OpEventRef }
  | {
      readonly kind: 'op.done';
      readonly op: OpEventRef;
      /** Set for `container.create`. */
      readonly containerId?: string;
      /** Set for `container.wait-completed`. */
      readonly exitCode?: number;
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
