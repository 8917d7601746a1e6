/**
 * RESP2 request parsing. The parser keeps one input buffer per connection and
 * exposes each complete command as argument (start, length) pairs into that
 * buffer: no object or string per argument. Inline commands (a plain text
 * line, as telnet sends) are accepted too, with redis-cli's quoting rules.
 *
 * Bounds: argument count, bulk length, inline length and unparsed input are
 * all capped; exceeding one is a protocol error (the connection is closed
 * after the error reply, as Redis does).
 */
import { ARGS_MAX, INLINE_BYTES_MAX } from '../constants.js'
import { DbError } from '../errors.js'

const CR = 13
const LF = 10
const STAR = 42
const DOLLAR = 36
const DQUOTE = 34
const SQUOTE = 39
const BACKSLASH = 92

/** Space, \t, \n, \v, \f, \r (what separates inline arguments). */
function isBlank(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13)
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  if (c >= 65 && c <= 70) return c - 55
  return -1
}

/** The byte a backslash escape inside double quotes stands for. */
function unescapeByte(c: number): number {
  switch (c) {
    case 0x6e: return LF // n
    case 0x72: return CR // r
    case 0x74: return 9 // t
    case 0x62: return 8 // b
    case 0x61: return 7 // a
    default: return c
  }
}

export const PARSE_NEED_MORE = 0
export const PARSE_COMMAND = 1

export class ProtocolError extends DbError {
  constructor(message: string) {
    super('PROTOCOL', message)
  }
}

export class RespParser {
  /** The bytes of the current command's arguments live here. */
  data: Buffer
  pos: number
  end: number
  argc: number
  argStart: Int32Array
  argLength: Int32Array
  private owned: boolean
  private bulkBytesMax: number
  private bufferBytesMax: number
  private argsMax: number
  /** The bounds are those of a connection that has not authenticated (Redis words its errors so). */
  private unauthenticated: boolean

  constructor(bulkBytesMax: number, bufferBytesMax: number, argsMax = ARGS_MAX, unauthenticated = false) {
    this.data = Buffer.alloc(0)
    this.pos = 0
    this.end = 0
    this.argc = 0
    this.argStart = new Int32Array(16)
    this.argLength = new Int32Array(16)
    this.owned = false
    this.bulkBytesMax = bulkBytesMax
    this.bufferBytesMax = bufferBytesMax
    this.argsMax = argsMax
    this.unauthenticated = unauthenticated
  }

  /**
   * Changes the bounds for what is parsed from now on (a connection's limits
   * grow once it has authenticated). Input already buffered stays.
   */
  setLimits(bulkBytesMax: number, bufferBytesMax: number, argsMax: number, unauthenticated: boolean): void {
    this.bulkBytesMax = bulkBytesMax
    this.bufferBytesMax = bufferBytesMax
    this.argsMax = argsMax
    this.unauthenticated = unauthenticated
  }

  pendingBytes(): number {
    return this.end - this.pos
  }

  /** Adds input. Parses in place when nothing is pending; copies only leftovers. */
  feed(chunk: Buffer): void {
    if (this.pos === this.end) {
      this.data = chunk
      this.pos = 0
      this.end = chunk.length
      this.owned = false
      return
    }
    const pending = this.end - this.pos
    const needed = pending + chunk.length
    if (needed > this.bufferBytesMax) throw new ProtocolError('query buffer limit exceeded')
    if (!this.owned || this.data.length < needed) {
      const next = Buffer.allocUnsafe(Math.max(needed, Math.min(this.bufferBytesMax, 2 * needed), 16 * 1024))
      this.data.copy(next, 0, this.pos, this.end)
      this.data = next
      this.owned = true
    } else if (this.pos > 0) {
      this.data.copy(this.data, 0, this.pos, this.end)
    }
    chunk.copy(this.data, pending)
    this.pos = 0
    this.end = needed
  }

  /** After a pass of next(): keep only what is unparsed, in a buffer of our own. */
  retain(): void {
    if (this.pos === this.end) {
      this.pos = 0
      this.end = 0
      if (!this.owned) this.data = Buffer.alloc(0)
      return
    }
    if (!this.owned) {
      const pending = this.end - this.pos
      const next = Buffer.allocUnsafe(Math.max(pending * 2, 16 * 1024))
      this.data.copy(next, 0, this.pos, this.end)
      this.data = next
      this.pos = 0
      this.end = pending
      this.owned = true
    }
  }

  private ensureArgs(n: number): void {
    if (n <= this.argStart.length) return
    let size = this.argStart.length
    while (size < n) size *= 2
    const s = new Int32Array(size)
    const l = new Int32Array(size)
    s.set(this.argStart)
    l.set(this.argLength)
    this.argStart = s
    this.argLength = l
  }

  /**
   * Reads a decimal integer line at `at` (after a type byte). Returns -2 if
   * incomplete. `what` names the length in errors, as Redis does
   * ("invalid multibulk length", "invalid bulk length").
   */
  private readLineInt(at: number, what: string): number {
    const d = this.data
    let n = 0
    let i = at
    let neg = false
    if (i < this.end && d[i] === 45) { neg = true; i++ }
    const start = i
    while (i < this.end) {
      const c = d[i]
      if (c === CR) {
        if (i + 1 >= this.end) return -2
        if (d[i + 1] !== LF || i === start) throw new ProtocolError(`invalid ${what} length`)
        this.lineEnd = i + 2
        return neg ? -n : n
      }
      if (c < 48 || c > 57 || i - start > 15) throw new ProtocolError(`invalid ${what} length`)
      if (c === 48 && i === start && i + 1 < this.end && d[i + 1] !== CR) throw new ProtocolError(`invalid ${what} length`)
      n = n * 10 + (c - 48)
      i++
    }
    if (i - start > 16) throw new ProtocolError(`invalid ${what} length`)
    return -2
  }

  private lineEnd = 0

  /** Parses one command. Returns PARSE_COMMAND (args set) or PARSE_NEED_MORE. */
  next(): number {
    if (this.pos >= this.end) return PARSE_NEED_MORE
    const d = this.data
    if (d[this.pos] !== STAR) return this.nextInline()
    const count = this.readLineInt(this.pos + 1, 'multibulk')
    if (count === -2) return PARSE_NEED_MORE
    if (count > this.argsMax) throw new ProtocolError(this.unauthenticated ? 'unauthenticated multibulk length' : 'invalid multibulk length')
    let at = this.lineEnd
    if (count <= 0) {
      this.pos = at
      this.argc = 0
      return PARSE_COMMAND
    }
    this.ensureArgs(count)
    for (let i = 0; i < count; i++) {
      if (at >= this.end) return PARSE_NEED_MORE
      if (d[at] !== DOLLAR) throw new ProtocolError(`expected '$', got '${String.fromCharCode(d[at])}'`)
      const len = this.readLineInt(at + 1, 'bulk')
      if (len === -2) return PARSE_NEED_MORE
      if (len > this.bulkBytesMax && this.unauthenticated) throw new ProtocolError('unauthenticated bulk length')
      if (len < 0 || len > this.bulkBytesMax) throw new ProtocolError('invalid bulk length')
      const start = this.lineEnd
      if (start + len + 2 > this.end) {
        if (start + len + 2 - this.pos > this.bufferBytesMax) throw new ProtocolError('query buffer limit exceeded')
        return PARSE_NEED_MORE
      }
      if (d[start + len] !== CR || d[start + len + 1] !== LF) throw new ProtocolError('bulk not terminated by CRLF')
      this.argStart[i] = start
      this.argLength[i] = len
      at = start + len + 2
    }
    this.argc = count
    this.pos = at
    return PARSE_COMMAND
  }

  private nextInline(): number {
    const d = this.data
    let nl = -1
    const limit = Math.min(this.end, this.pos + INLINE_BYTES_MAX)
    for (let i = this.pos; i < limit; i++) if (d[i] === LF) { nl = i; break }
    if (nl < 0) {
      if (this.end - this.pos >= INLINE_BYTES_MAX) throw new ProtocolError('too big inline request')
      return PARSE_NEED_MORE
    }
    let lineEnd = nl
    if (lineEnd > this.pos && d[lineEnd - 1] === CR) lineEnd--
    const argc = this.splitInline(this.pos, lineEnd)
    // The line is consumed either way: a request with unbalanced quotes is refused whole.
    this.pos = nl + 1
    if (argc < 0) throw new ProtocolError('unbalanced quotes in request')
    this.argc = argc
    return PARSE_COMMAND
  }

  /**
   * Splits an inline request line [from, to) into arguments with the quoting
   * rules redis-cli and telnet users expect: blanks separate arguments; "..."
   * takes the escapes \xHH \n \r \t \b \a and \<c> (c itself); '...' takes
   * only \'; a closing quote must end its argument; a NUL ends the line.
   * Unescaped bytes are written back in place (an argument never grows when
   * unescaped), so arguments stay (start, length) ranges of the input buffer.
   * Returns the argument count, or -1 for unbalanced quotes.
   */
  private splitInline(from: number, lineEnd: number): number {
    const d = this.data
    // A NUL ends the request text, as it ends a C string: what follows it is ignored.
    let to = from
    while (to < lineEnd && d[to] !== 0) to++
    let argc = 0
    let i = from
    for (;;) {
      while (i < to && isBlank(d[i])) i++
      if (i >= to) return argc
      const start = i
      let w = i
      let quote = 0
      for (;;) {
        if (quote !== 0) {
          if (i >= to) return -1
          const c = d[i]
          if (c === quote) {
            // A closing quote must end its argument.
            if (i + 1 < to && !isBlank(d[i + 1])) return -1
            i++
            break
          }
          if (c === BACKSLASH && quote === DQUOTE && i + 3 < to && d[i + 1] === 0x78 && hexValue(d[i + 2]) >= 0 && hexValue(d[i + 3]) >= 0) {
            d[w++] = hexValue(d[i + 2]) * 16 + hexValue(d[i + 3])
            i += 4
          } else if (c === BACKSLASH && i + 1 < to && (quote === DQUOTE || d[i + 1] === SQUOTE)) {
            d[w++] = quote === DQUOTE ? unescapeByte(d[i + 1]) : SQUOTE
            i += 2
          } else {
            d[w++] = c
            i++
          }
        } else {
          if (i >= to) break
          const c = d[i]
          if (c === 32 || c === 9 || c === CR || c === LF) break
          if (c === DQUOTE || c === SQUOTE) quote = c
          else d[w++] = c
          i++
        }
      }
      this.ensureArgs(argc + 1)
      this.argStart[argc] = start
      this.argLength[argc] = w - start
      argc++
    }
  }
}
