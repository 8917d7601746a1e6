/**
 * RESP2 and RESP3 reply encoding into a growable per-connection buffer.
 * Values are copied once, from the log straight into the output buffer. A
 * connection speaks RESP2 until HELLO 3; then nulls, maps and verbatim text
 * take their RESP3 types, everything else is encoded the same way.
 */
import { assert } from '../assert.js'

const CRLF = 0x0a0d

export class ReplyWriter {
  buf: Buffer
  length: number
  /** The protocol the client chose with HELLO: 2 (default) or 3 (RESP3 nulls, maps, verbatim text). */
  protocol: number
  /** Error replies written (the server counts them per command). */
  errors: number

  constructor(initialBytes = 16 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes)
    this.length = 0
    this.protocol = 2
    this.errors = 0
  }

  ensure(n: number): void {
    if (this.length + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.length + n) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.buf.copy(next, 0, 0, this.length)
    this.buf = next
  }

  /** Drops the first `n` bytes (already sent). */
  consume(n: number): void {
    assert(n <= this.length, 'consume within the buffer')
    if (n === this.length) { this.length = 0; return }
    this.buf.copy(this.buf, 0, n, this.length)
    this.length -= n
  }

  private crlf(): void {
    this.buf.writeUInt16LE(CRLF, this.length)
    this.length += 2
  }

  private decimal(n: number): void {
    if (n >= 0 && n < 10) { this.buf[this.length++] = 48 + n; return }
    this.length += this.buf.write(String(n), this.length, 'latin1')
  }

  raw(bytes: Buffer): void {
    this.ensure(bytes.length)
    bytes.copy(this.buf, this.length)
    this.length += bytes.length
  }

  /** A whole pre-formatted line (MONITOR output), written as is. */
  simpleLine(line: string): void {
    this.ensure(line.length * 3)
    this.length += this.buf.write(line, this.length, 'utf8')
  }

  simple(text: string): void {
    this.ensure(text.length * 3 + 3)
    this.buf[this.length++] = 43 // '+'
    this.length += this.buf.write(text, this.length, 'utf8')
    this.crlf()
  }

  /** `text` starts with the error code word, e.g. "ERR …", "WRONGTYPE …". */
  error(text: string): void {
    this.errors++
    const clean = text.replace(/[\r\n]+/g, ' ')
    this.ensure(clean.length * 3 + 3)
    this.buf[this.length++] = 45 // '-'
    this.length += this.buf.write(clean, this.length, 'utf8')
    this.crlf()
  }

  integer(n: number): void {
    this.ensure(24)
    this.buf[this.length++] = 58 // ':'
    this.decimal(n)
    this.crlf()
  }

  integerText(digits: string): void {
    this.ensure(digits.length + 3)
    this.buf[this.length++] = 58
    this.length += this.buf.write(digits, this.length, 'latin1')
    this.crlf()
  }

  bulkHeader(length: number): void {
    this.ensure(16)
    this.buf[this.length++] = 36 // '$'
    this.decimal(length)
    this.crlf()
  }

  bulk(src: Uint8Array, start: number, length: number): void {
    this.ensure(length + 16)
    this.bulkHeader(length)
    if (length <= 64) {
      const b = this.buf
      let at = this.length
      for (let i = 0; i < length; i++) b[at++] = src[start + i]
    } else {
      this.buf.set(src.subarray(start, start + length), this.length)
    }
    this.length += length
    this.crlf()
  }

  bulkString(text: string): void {
    const n = Buffer.byteLength(text)
    this.ensure(n + 16)
    this.bulkHeader(n)
    this.length += this.buf.write(text, this.length, 'utf8')
    this.crlf()
  }

  nullBulk(): void {
    if (this.protocol === 3) { this.null3(); return }
    this.ensure(5)
    this.buf.write('$-1\r\n', this.length, 'latin1')
    this.length += 5
  }

  private null3(): void {
    this.ensure(3)
    this.buf.write('_\r\n', this.length, 'latin1')
    this.length += 3
  }

  /** A map of `pairs` key/value pairs follows (RESP3 '%'; a flat array of 2 x pairs in RESP2). */
  mapHeader(pairs: number): void {
    if (this.protocol !== 3) { this.arrayHeader(2 * pairs); return }
    this.ensure(16)
    this.buf[this.length++] = 37 // '%'
    this.decimal(pairs)
    this.crlf()
  }

  /** Human-readable text (INFO, CLIENT LIST): RESP3 verbatim string of format txt, else a bulk string. */
  verbatim(text: string): void {
    if (this.protocol !== 3) { this.bulkString(text); return }
    const n = Buffer.byteLength(text) + 4
    this.ensure(n + 16)
    this.buf[this.length++] = 61 // '='
    this.decimal(n)
    this.crlf()
    this.length += this.buf.write('txt:', this.length, 'latin1')
    this.length += this.buf.write(text, this.length, 'utf8')
    this.crlf()
  }

  arrayHeader(n: number): void {
    this.ensure(16)
    this.buf[this.length++] = 42 // '*'
    this.decimal(n)
    this.crlf()
  }

  nullArray(): void {
    if (this.protocol === 3) { this.null3(); return }
    this.ensure(5)
    this.buf.write('*-1\r\n', this.length, 'latin1')
    this.length += 5
  }
}
