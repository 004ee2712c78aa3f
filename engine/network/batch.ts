/** What happened to one item of a batch. */
export type Settled<R> = { readonly ok: true; readonly value: R } | { readonly ok: false; readonly error: unknown };

interface Waiting<T, R> {
  readonly item: T;
  readonly resolve: (value: R) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit: calls that arrive while a batch runs wait, and go together in the next one. N concurrent callers
 * (the executor creates up to 16 containers at once) cost one lock acquisition and one round of `ip`/runtime
 * processes per batch instead of one per caller, and nobody waits longer than one batch for the queue to start.
 * `run` gets the items in arrival order and returns one result per item, in the same order; a throw fails them all.
 */
export class Batcher<T, R> {
  private queue: Waiting<T, R>[] = [];
  private running = false;
  private readonly run: (items: readonly T[]) => Promise<readonly Settled<R>[]>;

  constructor(run: (items: readonly T[]) => Promise<readonly Settled<R>[]>) {
    this.run = run;
  }

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.running) {
        this.running = true;
        // Callers that submit in the same turn of the event loop join the first batch.
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0);
        let results: readonly Settled<R>[];
        try {
          results = await this.run(batch.map((waiting) => waiting.item));
        } catch (error) {
          for (const waiting of batch) waiting.reject(error);
          continue;
        }
        batch.forEach((waiting, index) => {
          const result = results[index];
          if (result === undefined) waiting.reject(new Error('batch returned no result for an item'));
          else if (result.ok) waiting.resolve(result.value);
          else waiting.reject(result.error);
        });
      }
    } finally {
      this.running = false;
    }
  }
}
