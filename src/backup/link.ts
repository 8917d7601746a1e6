/**
 * The backup's end of the replication link: one TCP connection to the
 * primary at a time, its handshake lines (handshake.ts), then the frame
 * stream; reconnects with a bounded backoff (RECONNECT_MS_MIN doubling to
 * RECONNECT_MS_MAX); ACK frames (at most one queued a turn); and the bounds on
 * a silent primary (LINK_TIMEOUT_MS with the link up, or for a handshake
 * step). What the lines and frames mean is the backup's (the LinkSink).
 *
 * Reads land in one reused LINK_READ_BYTES buffer (nothing allocated per
 * read): the sink copies every byte it keeps before its callback returns.
 */
import net from 'node:net'
import { nowMs } from '../io/clock.js'
import { ACK_PAYLOAD_BYTES, FRAME_HEADER_BYTES, LINK_TIMEOUT_MS, encodeAck } from '../ship/protocol.js'
import { parseHandshakeLine, type HandshakeLine } from './handshake.js'

export const RECONNECT_MS_MIN = 50
export const RECONNECT_MS_MAX = 1000
/** Bytes of one read of the replication link (Node's own default read size). */
export const LINK_READ_BYTES = 64 * 1024
/** A handshake reply line longer than this closes the link. */
const HANDSHAKE_LINE_BYTES_MAX = 4096

/** How the backup takes what arrives on the link. */
export interface LinkSink {
  /** May a connection be made now (not closed, not stopped)? */
  mayConnect(): boolean
  /** What to send once connected: AUTH, then FRESHET.SYNC (or the next divergence check), as RESP. */
  hello(): string
  /**
   * One handshake line: 'more' keeps reading lines, 'up' makes the link up
   * (what follows is frames), 'end' means the sink closed or took off this
   * connection (detach, drop) and decided what comes next.
   */
  handshakeLine(h: HandshakeLine): 'more' | 'up' | 'end'
  /** Frames after the handshake. */
  frames(chunk: Buffer): void
  /** The positions an ACK reports now. */
  ackPositions(): { received: number, flushed: number, applied: number, lagMs: number }
}

export class PrimaryLink {
  host: string
  port: number
  up: boolean
  private readonly sink: LinkSink
  private readonly log: (line: string) => void
  private socket: net.Socket | null
  /** Handshake bytes read so far (null once the link is up). */
  private handshake: Buffer | null
  private reconnectMs: number
  private reconnectTimer: NodeJS.Timeout | null
  private lastFrameMs: number
  /** When the primary last sent anything (or this link was made): a lost primary's lag is at least the time since. */
  lastHeardMs: number
  private ackScheduled: boolean
  private readonly ackBuf: Buffer
  private readonly readBuf: Buffer
  private closed: boolean
  private readonly segmentBytes: number

  constructor(host: string, port: number, segmentBytes: number, sink: LinkSink, log: (line: string) => void) {
    this.host = host
    this.segmentBytes = segmentBytes
    this.port = port
    this.up = false
    this.sink = sink
    this.log = log
    this.socket = null
    this.handshake = null
    this.reconnectMs = RECONNECT_MS_MIN
    this.reconnectTimer = null
    this.lastFrameMs = 0
    this.lastHeardMs = nowMs()
    this.ackScheduled = false
    this.ackBuf = Buffer.alloc(FRAME_HEADER_BYTES + ACK_PAYLOAD_BYTES)
    this.readBuf = Buffer.alloc(LINK_READ_BYTES)
    this.closed = false
  }

  get connected(): boolean {
    return this.socket !== null
  }

  connect(): void {
    if (this.closed || !this.sink.mayConnect()) return
    const socket: net.Socket = net.connect({
      host: this.host, port: this.port, noDelay: true,
      onread: { buffer: this.readBuf, callback: (n: number) => { this.onData(socket, n); return !socket.isPaused() } },
    })
    this.socket = socket
    this.lastFrameMs = nowMs()
    this.handshake = Buffer.alloc(0)
    const hello = this.sink.hello()
    socket.on('connect', () => {
      socket.write(hello)
      this.lastFrameMs = nowMs()
    })
    socket.on('error', () => { /* 'close' follows and reconnects */ })
    socket.on('close', () => this.onClose(socket))
  }

  /** Connects after `delayMs` (replacing a pending reconnect). */
  connectIn(delayMs: number): void {
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer)
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null
      this.connect()
    }, delayMs)
    this.reconnectTimer.unref()
  }

  /** The next reconnect waits the shortest backoff (the primary may answer differently at once) or the longest (it will not soon). */
  retrySoon(soon: boolean): void {
    this.reconnectMs = soon ? RECONNECT_MS_MIN : RECONNECT_MS_MAX
  }

  /** Closes the connection (logging why, unless null); the backoff reconnects (unless closed). */
  drop(reason: string | null): void {
    if (this.socket === null) return
    if (reason !== null) this.log(`closing link to primary: ${reason}`)
    this.socket.destroy()
  }

  /** Takes the connection off the link and closes it: nothing reconnects until the caller connects again. */
  detach(): void {
    const socket = this.socket
    this.socket = null
    this.handshake = null
    this.up = false
    socket?.destroy()
  }

  /** During the handshake: one more command (a divergence check). */
  write(text: string): void {
    this.socket?.write(text)
  }

  pause(): void {
    if (this.socket !== null && !this.socket.isPaused()) this.socket.pause()
  }

  resume(): void {
    if (this.socket !== null && this.socket.isPaused()) this.socket.resume()
  }

  /** REPLICAOF: follow another primary; connects at once (a cut or reset in progress connects when done). */
  repoint(host: string, port: number): void {
    this.host = host
    this.port = port
    this.reconnectMs = RECONNECT_MS_MIN
    if (this.socket !== null) this.drop(`repointed to ${host}:${port}`)
    else if (this.reconnectTimer !== null) this.connectIn(0)
  }

  /** Sends an ACK of the sink's positions, once this turn. */
  scheduleAck(): void {
    if (this.ackScheduled) return
    this.ackScheduled = true
    setImmediate(() => {
      this.ackScheduled = false
      const s = this.socket
      if (s === null || !this.up) return
      const p = this.sink.ackPositions()
      encodeAck(this.ackBuf, p.received, p.flushed, p.applied, p.lagMs)
      s.write(Buffer.from(this.ackBuf))
    })
  }

  /** The backup's tick: an ACK even when idle (the primary drops a link that acks nothing), and the silent-primary bounds. */
  tick(now: number): void {
    if (this.up && now - this.lastFrameMs > LINK_TIMEOUT_MS) this.drop(`no frame for ${LINK_TIMEOUT_MS} ms`)
    if (this.up) this.scheduleAck()
    // A handshake or divergence check that gets no answer is bounded too.
    if (!this.up && this.socket !== null && now - this.lastFrameMs > LINK_TIMEOUT_MS) this.drop(`no answer from the primary for ${LINK_TIMEOUT_MS} ms`)
  }

  close(): void {
    this.closed = true
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer)
    this.detach()
  }

  private onClose(socket: net.Socket): void {
    if (this.socket !== socket) return
    this.socket = null
    if (this.up) this.log(`link to primary ${this.host}:${this.port} down`)
    this.up = false
    if (this.closed) return
    const delay = this.reconnectMs
    this.reconnectMs = Math.min(RECONNECT_MS_MAX, this.reconnectMs * 2)
    this.connectIn(delay)
  }

  private onData(socket: net.Socket, n: number): void {
    if (this.socket !== socket) return
    let chunk = this.readBuf.subarray(0, n)
    this.lastFrameMs = nowMs()
    this.lastHeardMs = this.lastFrameMs
    if (this.handshake !== null) {
      chunk = this.readHandshake(socket, chunk)
      if (this.handshake !== null || chunk.length === 0 || this.socket !== socket) return
    }
    this.sink.frames(chunk)
  }

  /** Handshake lines until the link is up; returns the bytes after the last line read. */
  private readHandshake(socket: net.Socket, chunk: Buffer): Buffer {
    let buf = Buffer.concat([this.handshake!, chunk])
    for (;;) {
      const nl = buf.indexOf(10)
      if (nl < 0) {
        if (buf.length > HANDSHAKE_LINE_BYTES_MAX) this.drop('handshake reply too long')
        else this.handshake = buf
        return Buffer.alloc(0)
      }
      const line = buf.toString('utf8', 0, nl).replace(/\r$/, '')
      buf = buf.subarray(nl + 1)
      const next = this.sink.handshakeLine(parseHandshakeLine(line, this.segmentBytes))
      if (this.socket !== socket) return Buffer.alloc(0)
      if (next === 'more') continue
      this.handshake = null
      if (next === 'end') return Buffer.alloc(0)
      this.up = true
      this.reconnectMs = RECONNECT_MS_MIN
      return buf
    }
  }
}
