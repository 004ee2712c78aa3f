/** Small helpers of the registry client. */

export function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/** Runs fn over items with at most limit at once; the first failure rejects once every worker has stopped. */
export async function boundedAll<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, () => worker()));
  if (failure !== undefined) throw asError(failure);
}
