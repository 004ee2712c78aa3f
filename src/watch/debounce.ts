/** Collects keys and calls `flush` once they have been quiet for `quietMs` (or after `maxWaitMs` of a long burst). */
export class Debouncer<K> {
  private readonly pending = new Set<K>();
  private timer: NodeJS.Timeout | undefined;
  private firstAt = 0;
  private readonly quietMs: number;
  private readonly maxWaitMs: number;
  private readonly flush: (keys: K[]) => void;

  constructor(flush: (keys: K[]) => void, quietMs = 300, maxWaitMs = 3000) {
    this.flush = flush;
    this.quietMs = quietMs;
    this.maxWaitMs = maxWaitMs;
  }

  add(key: K): void {
    if (this.pending.size === 0) this.firstAt = Date.now();
    this.pending.add(key);
    if (this.timer !== undefined) clearTimeout(this.timer);
    const wait = Math.min(this.quietMs, Math.max(0, this.firstAt + this.maxWaitMs - Date.now()));
    this.timer = setTimeout(() => this.fire(), wait);
  }

  private fire(): void {
    this.timer = undefined;
    const keys = [...this.pending];
    this.pending.clear();
    if (keys.length > 0) this.flush(keys);
  }

  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
  }
}
