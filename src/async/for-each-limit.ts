// Runs an async task per item with at most `limit` in flight: thousands of repositories or
// snapshot files must not mean thousands of simultaneous requests. After the first failure no
// new item starts, and that failure is what the call rejects with.

/**
 * Runs `task` on every item, at most `limit` at once, starting them in item order. Rejects with the first
 * error: a task's, or `signal`'s abort reason (checked before each item starts; `task` is not given the
 * signal and is not cancelled). No item starts after a failure, and the call settles only when the tasks
 * in flight have.
 */
export async function forEachLimit<T>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<void>, signal?: AbortSignal): Promise<void> {
  let next = 0
  let failure: { readonly error: unknown } | undefined
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const index = next++
      try {
        signal?.throwIfAborted()
        await task(items[index]!, index)
      } catch (error) {
        failure ??= { error }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  if (failure !== undefined) throw failure.error
}
