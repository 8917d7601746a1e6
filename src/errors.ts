/**
 * DbError: expected operating errors with a stable `code` (tests and callers
 * match on the code, never on message text) and an optional `cause`.
 */
export type DbErrorCode =
  | 'LOG_CORRUPT'
  | 'LOG_DAMAGED'
  | 'LOG_FULL'
  | 'QUEUE_AT_LIMIT'
  | 'VALUE_TOO_LARGE'
  | 'KEY_TOO_LARGE'
  | 'TXN_TOO_LARGE'
  | 'OOM'
  | 'NOT_PRIMARY'
  | 'PROTOCOL'
  | 'EPOCH_MISMATCH'
  | 'AUTH_FAILED'
  | 'LINK_DOWN'
  | 'TIMEOUT'
  | 'INVALID_OPTION'
  | 'CLOSED'
  | 'NOREPLICAS'
  | 'RDB_INVALID'
  | 'RDB_UNSUPPORTED'
  | 'READONLY'

export class DbError extends Error {
  override name = 'DbError'
  readonly code: DbErrorCode
  constructor(code: DbErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

export function dbError(code: DbErrorCode, message: string, cause?: unknown): DbError {
  return new DbError(code, message, cause === undefined ? undefined : { cause })
}

/** Redis's words for a write refused past maxmemory (clients and tests match on them). */
export const OOM_MESSAGE = 'command not allowed when used memory > \'maxmemory\'.'
