/** Small helpers of the registry client. */

export function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/**
 * Runs fn over items with at most limit at once; the first failure rejects once every started one has stopped (none
 * starts after it). fn may call release() to give its place to the next item before it ends (a pulled layer that is
 * unpacked and only waits for the layer below it to be committed).
 */
export async function boundedAll<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, release: () => void) => Promise<void>,
): Promise<void> {
  let active = 0;
  let failure: unknown;
  const waiting: (() => void)[] = [];
  const running: Promise<void>[] = [];
  const free = (): void => {
    active--;
    waiting.shift()?.();
  };
  for (const item of items) {
    while (active >= Math.max(1, limit)) await new Promise<void>((resolve) => waiting.push(resolve));
    if (failure !== undefined) break;
    active++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      free();
    };
    running.push(
      (async () => {
        try {
          await fn(item, release);
        } catch (error) {
          failure ??= error;
        } finally {
          release();
        }
      })(),
    );
  }
  await Promise.all(running);
  if (failure !== undefined) throw asError(failure);
}
