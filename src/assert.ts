/**
 * assert(): programmer errors only. An assertion that fails means freshet's own
 * invariants are broken; it throws AssertionError and is never caught except at
 * the process crash boundary. Expected operating errors use DbError (errors.ts).
 */
export class AssertionError extends Error {
  override name = 'AssertionError'
}

export function assert(condition: unknown, message?: string): asserts condition {
  if (!condition) throw new AssertionError(message ?? 'assertion failed')
}
