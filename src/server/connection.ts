/**
 * One client connection: its parser, its reply buffer, its session state
 * (auth, name, MULTI queue, last write) and the rule that holds replies back
 * until their writes are committed.
 *
 * Reply holding: each batch of replies produced by one input chunk is marked
 * with the node's wait position at that moment (the newest op written by
 * anyone; a read may have observed it). Bytes are sent only once the node's
 * released position (sealed, fsynced, or flushed/applied by backups,
 * depending on the commit mode) has passed the mark. Replies therefore leave
 * in order, and no client ever observes a write that is not yet committed.
 */
import type { Freshness } from './freshness.js'
import type { WatchRegistry } from './watches.js'
import type { Socket } from 'node:net'
import { ARGS_MAX, REPLY_BUFFER_BYTES_MAX, UNAUTH_ARGS_MAX, UNAUTH_BULK_BYTES_MAX, UNAUTH_QUERY_BYTES_MAX } from '../constants.js'
import type { Args } from './args.js'
import type { Session } from './commands.js'
import { ReplyWriter } from './reply.js'
import { RespParser } from './resp.js'
import { nowMs } from '../io/clock.js'

const READ_PAUSE_BYTES = 4 * 1024 * 1024

export class Connection {
  readonly id: number
  readonly socket: Socket
  readonly parser: RespParser
  readonly out: ReplyWriter
  readonly addr: string
  readonly createdMs: number
  name: string
  authed: boolean
  inMulti: boolean
  multiQueue: Args[]
  multiError: boolean
  /** Start of the block holding this connection's newest write (-1: none yet). */
  lastWriteBlockStart: number
  /** Bytes [0, sendable) of `out` may be sent; later ones wait for their marks. */
  sendable: number
  markEnd: number[]
  markLsn: number[]
  /** When each mark was made (ms): a reply held longer than its node's bound gets an error instead (expireHeld). */
  markMs: number[]
  /** Set while a blocking command (WAIT, WAITLSN) waits; input processing stops. */
  blocked: boolean
  closing: boolean
  closed: boolean
  paused: boolean
  /** Replication link: the socket was handed to the replication code. */
  detached: boolean
  commandsTotal: number
  /** Newest log position observed by the commands run since the last mark (-1: none). */
  observedLsn: number
  /** What command handlers see (set once by the server that accepted the connection). */
  session: Session | null
  /** FRESHET.FRESHNESS: the contract this connection's reads are held to, or null. */
  freshness: Freshness | null
  /** The newest command's name and when it ran (CLIENT LIST cmd= and idle=). */
  lastCommand: string
  lastCommandMs: number
  /**
   * WATCHed keys and the version (ref, REF_NONE if none) each had when
   * watched. On a primary, writes mark the connection (watchDirty, through
   * `watches`); a backup has no writes and compares versions at EXEC.
   */
  readonly watchedKeys: Buffer[]
  readonly watchedVersions: number[]
  readonly watchedHashes: number[]
  /** A watched key was written since WATCH (server/watches.ts). */
  watchDirty: boolean
  /** The server's WATCH registry (null: none, as in unit tests). */
  private readonly watches: WatchRegistry | null
  /** The watched keys (latin1), so watching a key twice keeps one entry without a scan. */
  private readonly watchedSet: Set<string>
  private readonly bulkBytesMax: number
  private readonly queryBytesMax: number

  /**
   * A connection that must still AUTH (`authed` false) parses with the small
   * UNAUTH_* bounds; authenticate() lifts them to the connection's own.
   */
  constructor(id: number, socket: Socket, bulkBytesMax: number, queryBytesMax: number, authed: boolean, watches: WatchRegistry | null = null) {
    this.id = id
    this.socket = socket
    this.parser = authed
      ? new RespParser(bulkBytesMax, queryBytesMax, ARGS_MAX)
      : new RespParser(UNAUTH_BULK_BYTES_MAX, UNAUTH_QUERY_BYTES_MAX, UNAUTH_ARGS_MAX, true)
    this.out = new ReplyWriter()
    this.addr = `${socket.remoteAddress}:${socket.remotePort}`
    this.createdMs = nowMs()
    this.name = ''
    this.authed = authed
    this.inMulti = false
    this.multiQueue = []
    this.multiError = false
    this.lastWriteBlockStart = -1
    this.sendable = 0
    this.markEnd = []
    this.markLsn = []
    this.markMs = []
    this.blocked = false
    this.closing = false
    this.closed = false
    this.paused = false
    this.detached = false
    this.commandsTotal = 0
    this.observedLsn = -1
    this.session = null
    this.freshness = null
    this.lastCommand = 'NULL'
    this.lastCommandMs = this.createdMs
    this.watchedKeys = []
    this.watchedVersions = []
    this.watchedHashes = []
    this.watchDirty = false
    this.watches = watches
    this.watchedSet = new Set()
    this.bulkBytesMax = bulkBytesMax
    this.queryBytesMax = queryBytesMax
  }

  /** WATCH of one key (bytes [start, start + length) of `data`) at its current version; a key watched already keeps its first version. */
  watch(data: Buffer, start: number, length: number, version: number, hash: number): void {
    const name = data.toString('latin1', start, start + length)
    if (this.watchedSet.has(name)) return
    this.watchedSet.add(name)
    const key = Buffer.from(data.subarray(start, start + length))
    this.watchedKeys.push(key)
    this.watchedVersions.push(version)
    this.watchedHashes.push(hash)
    if (this.watches !== null) this.watches.add(this, hash, key)
  }

  unwatch(): void {
    if (this.watches !== null && this.watchedHashes.length > 0) this.watches.remove(this, this.watchedHashes)
    this.watchedKeys.length = 0
    this.watchedVersions.length = 0
    this.watchedHashes.length = 0
    this.watchedSet.clear()
    this.watchDirty = false
  }

  /** Leaves MULTI (EXEC, DISCARD, RESET): the queue, its error flag and the watched keys go. */
  endTransaction(): void {
    this.inMulti = false
    this.multiQueue = []
    this.multiError = false
    this.unwatch()
  }

  /** RESET on a node with a password: the connection must AUTH again, with the small bounds meanwhile. */
  deauthenticate(): void {
    this.authed = false
    this.parser.setLimits(UNAUTH_BULK_BYTES_MAX, UNAUTH_QUERY_BYTES_MAX, UNAUTH_ARGS_MAX, true)
  }

  /** The client proved its password: it may now send requests up to the connection's full bounds. */
  authenticate(): void {
    this.authed = true
    this.parser.setLimits(this.bulkBytesMax, this.queryBytesMax, ARGS_MAX, false)
  }

  /** Replies written since the last mark wait until released > waitLsn. */
  mark(waitLsn: number, releasedLsn: number): void {
    const end = this.out.length
    const lastEnd = this.markEnd.length > 0 ? this.markEnd[this.markEnd.length - 1] : this.sendable
    if (end === lastEnd) return
    // waitLsn < 0: the replies observed no write at all, so nothing to wait for.
    if (this.markEnd.length === 0 && (waitLsn < 0 || waitLsn < releasedLsn)) {
      this.sendable = end
      return
    }
    this.markEnd.push(end)
    this.markLsn.push(waitLsn)
    this.markMs.push(nowMs())
  }

  hasHeld(): boolean {
    return this.markEnd.length > 0
  }

  /** Makes sendable every mark whose wait position is below `releasedLsn`. */
  release(releasedLsn: number): void {
    let n = 0
    while (n < this.markEnd.length && (this.markLsn[n] < 0 || this.markLsn[n] < releasedLsn)) n++
    if (n === 0) return
    this.sendable = this.markEnd[n - 1]
    this.markEnd.splice(0, n)
    this.markLsn.splice(0, n)
    this.markMs.splice(0, n)
  }

  /**
   * Replaces every held reply marked at or before `beforeMs` with the error
   * `text` (one error per reply, so a pipelining client stays in step) and
   * makes them sendable. Returns how many replies were replaced.
   */
  expireHeld(beforeMs: number, text: string): number {
    let n = 0
    while (n < this.markMs.length && this.markMs[n] <= beforeMs) n++
    if (n === 0) return 0
    const out = this.out
    const from = this.sendable
    const to = this.markEnd[n - 1]
    const count = countReplies(out.buf, from, to)
    const rest = Buffer.from(out.buf.subarray(to, out.length))
    out.length = from
    for (let i = 0; i < count; i++) out.error(text)
    const shift = out.length - to
    out.ensure(rest.length)
    rest.copy(out.buf, out.length)
    out.length += rest.length
    this.sendable = out.length - rest.length
    this.markEnd.splice(0, n)
    this.markLsn.splice(0, n)
    this.markMs.splice(0, n)
    for (let i = 0; i < this.markEnd.length; i++) this.markEnd[i] += shift
    return count
  }

  /** Sends what may be sent. Returns false if the connection was cut for exceeding its reply bound. */
  flush(): boolean {
    if (this.closed) return false
    const n = this.sendable
    if (n > 0) {
      const chunk = Buffer.allocUnsafe(n)
      this.out.buf.copy(chunk, 0, 0, n)
      this.out.consume(n)
      for (let i = 0; i < this.markEnd.length; i++) this.markEnd[i] -= n
      this.sendable = 0
      this.socket.write(chunk)
    }
    if (this.socket.writableLength + this.out.length > REPLY_BUFFER_BYTES_MAX) {
      this.destroy()
      return false
    }
    if (!this.paused && this.socket.writableLength > READ_PAUSE_BYTES) {
      this.paused = true
      this.socket.pause()
      this.socket.once('drain', () => {
        this.paused = false
        if (!this.closed) this.socket.resume()
      })
    }
    if (this.closing && this.out.length === 0) this.socket.end()
    return true
  }

  destroy(): void {
    if (this.closed) return
    this.closed = true
    this.socket.destroy()
  }
}

/**
 * Top-level replies in buf[from, to): a bounded walk of RESP2/RESP3 reply
 * framing (our own output, so well formed; every step moves forward).
 */
export function countReplies(buf: Buffer, from: number, to: number): number {
  let count = 0
  let at = from
  // Elements still owed by the open aggregates (each nested one first takes its parent's slot).
  let owed = 0
  while (at < to) {
    const type = buf[at]
    const nl = buf.indexOf(10, at)
    if (nl < 0 || nl >= to) break
    const len = Number(buf.toString('latin1', at + 1, nl - 1))
    at = nl + 1
    if (owed === 0) count++
    else owed--
    switch (type) {
      case 0x24: case 0x21: case 0x3d: // $ bulk, ! bulk error, = verbatim: a length-prefixed payload
        if (len >= 0) at += len + 2
        break
      case 0x2a: case 0x7e: case 0x3e: // * array, ~ set, > push
        if (len > 0) owed += len
        break
      case 0x25: // % map: two elements an entry
        if (len > 0) owed += 2 * len
        break
      default: // + - : , # _ ( one line
        break
    }
  }
  return count
}
