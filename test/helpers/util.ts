/**
 * Small bounded async utilities for tests.
 */

/** Polls `cond` every intervalMs until it holds; throws after timeoutMs. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await cond()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/**
 * Runs fn over items with at most `limit` in flight. After the first failure
 * no new item starts; the ones in flight are waited for (so nothing outlives
 * the test and its cleanup), then the first failure is thrown.
 */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0
  let failure: { error: unknown } | null = null
  const lane = async (): Promise<void> => {
    while (failure === null && next < items.length) {
      const i = next++
      try {
        await fn(items[i], i)
      } catch (error) {
        if (failure === null) failure = { error }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, () => lane()))
  if (failure !== null) throw (failure as { error: unknown }).error
}
