/**
 * A bounded hand-over of a blob's bytes from its download to the layer's unpacking, so that a layer is unpacked while
 * it (and the layers after it) download. The writer waits while more than `highWater` bytes are queued; once the
 * reader stops (it finished early or failed), writes are dropped, so the download still runs to its end and its
 * digest is still checked.
 */

/** Thrown into the reader when a download has to start again from its first byte (the server ignored a Range). */
export class RestartedFromZero extends Error {
  constructor() {
    super('the download started again from its first byte');
  }
}

export class ChunkPipe implements AsyncIterable<Buffer> {
  private chunks: Buffer[] = [];
  private queued = 0;
  /** Bytes handed to the reader or queued for it. */
  private written = 0;
  private ended = false;
  private failure: Error | undefined;
  private readerGone = false;
  private wakeReader: (() => void) | undefined;
  private wakeWriter: (() => void) | undefined;

  private readonly highWater: number;

  constructor(highWater = 4 * 1024 * 1024) {
    this.highWater = highWater;
  }

  /** A response starts at offset (0: from the first byte). Restarting after bytes were handed over fails the reader. */
  begin(offset: number): void {
    if (offset === 0 && this.written > 0) {
      this.fail(new RestartedFromZero());
      throw new RestartedFromZero();
    }
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.readerGone || this.failure !== undefined) return;
    this.chunks.push(chunk);
    this.queued += chunk.length;
    this.written += chunk.length;
    this.wake();
    while (this.queued > this.highWater && !this.readerGone && this.failure === undefined) {
      await new Promise<void>((resolve) => (this.wakeWriter = resolve));
    }
  }

  /** No more bytes: the reader ends after the queued ones. */
  end(): void {
    this.ended = true;
    this.wake();
  }

  /** The reader throws error at its next read. */
  fail(error: Error): void {
    this.failure ??= error;
    this.wake();
  }

  private wake(): void {
    const reader = this.wakeReader;
    const writer = this.wakeWriter;
    this.wakeReader = undefined;
    this.wakeWriter = undefined;
    reader?.();
    writer?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        if (this.failure !== undefined) throw this.failure;
        const chunk = this.chunks.shift();
        if (chunk !== undefined) {
          this.queued -= chunk.length;
          if (this.queued <= this.highWater) this.wake();
          yield chunk;
          continue;
        }
        if (this.ended) return;
        await new Promise<void>((resolve) => (this.wakeReader = resolve));
      }
    } finally {
      this.readerGone = true;
      this.chunks = [];
      this.queued = 0;
      this.wake();
    }
  }
}
