/**
 * A minimal pipelining RESP2 client for freshet's own tools (demo, lag,
 * benchmarks): commands go out in order, replies resolve in order. Error
 * replies resolve to RespErrorReply (not thrown) so callers can check codes.
 */
import net from 'node:net'
import { dbError } from '../errors.js'

export class RespErrorReply {
  constructor(readonly text: string) {}
  get code(): string { return this.text.split(' ', 1)[0] }
}

export type Reply = string | number | Buffer | null | RespErrorReply | Reply[]

const PENDING_MAX = 1_000_000

export class RespClient {
  private readonly socket: net.Socket
  private pending: Array<{ resolve: (r: Reply) => void, reject: (e: unknown) => void }>
  private pendingHead: number
  private buf: Buffer
  private closedErr: Error | null

  private constructor(socket: net.Socket) {
    this.socket = socket
    this.pending = []
    this.pendingHead = 0
    this.buf = Buffer.alloc(0)
    this.closedErr = null
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', (err) => this.fail(err))
    socket.on('close', () => this.fail(new Error('connection closed')))
  }

  static connect(host: string, port: number, timeoutMs = 5000): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true })
      const timer = setTimeout(() => { socket.destroy(); reject(dbError('TIMEOUT', `connect to ${host}:${port} timed out`)) }, timeoutMs)
      socket.once('connect', () => { clearTimeout(timer); resolve(new RespClient(socket)) })
      socket.once('error', (err) => { clearTimeout(timer); reject(dbError('LINK_DOWN', `cannot connect to ${host}:${port}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, err)) })
    })
  }

  inFlight(): number {
    return this.pending.length - this.pendingHead
  }

  /** Sends one command; resolves with its reply. */
  call(...args: Array<string | number | Buffer>): Promise<Reply> {
    if (this.closedErr !== null) return Promise.reject(this.closedErr)
    if (this.inFlight() >= PENDING_MAX) return Promise.reject(dbError('QUEUE_AT_LIMIT', 'too many commands in flight'))
    this.socket.write(encodeCommand(args))
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }))
  }

  /** Sends many commands in one write; resolves with all replies. */
  pipeline(commands: Array<Array<string | number | Buffer>>): Promise<Reply[]> {
    if (this.closedErr !== null) return Promise.reject(this.closedErr)
    const parts = commands.map(encodeCommand)
    this.socket.write(Buffer.concat(parts))
    return Promise.all(commands.map(() => new Promise<Reply>((resolve, reject) => this.pending.push({ resolve, reject }))))
  }

  close(): void {
    this.socket.end()
    this.socket.destroy()
  }

  private fail(err: Error): void {
    if (this.closedErr === null) this.closedErr = err
    for (let i = this.pendingHead; i < this.pending.length; i++) this.pending[i].reject(err)
    this.pending = []
    this.pendingHead = 0
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    let at = 0
    for (;;) {
      const r = parseReply(this.buf, at)
      if (r === null) break
      at = r.next
      const p = this.pending[this.pendingHead++]
      if (p !== undefined) p.resolve(r.value)
    }
    this.buf = this.buf.subarray(at)
    if (this.pendingHead > 4096 && this.pendingHead * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.pendingHead)
      this.pendingHead = 0
    }
  }
}

export function encodeCommand(args: Array<string | number | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)]
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a))
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'))
  }
  return Buffer.concat(parts)
}

function parseReply(b: Buffer, at: number): { value: Reply, next: number } | null {
  if (at >= b.length) return null
  const nl = b.indexOf('\r\n', at)
  if (nl < 0) return null
  const type = b[at]
  const line = b.toString('utf8', at + 1, nl)
  const next = nl + 2
  switch (type) {
    case 43: return { value: line, next }
    case 45: return { value: new RespErrorReply(line), next }
    case 58: return { value: Number(line), next }
    case 36: {
      const n = Number(line)
      if (n < 0) return { value: null, next }
      if (next + n + 2 > b.length) return null
      return { value: Buffer.from(b.subarray(next, next + n)), next: next + n + 2 }
    }
    case 42: {
      const n = Number(line)
      if (n < 0) return { value: null, next }
      const items: Reply[] = []
      let p = next
      for (let i = 0; i < n; i++) {
        const r = parseReply(b, p)
        if (r === null) return null
        items.push(r.value)
        p = r.next
      }
      return { value: items, next: p }
    }
    default:
      throw dbError('PROTOCOL', `unexpected reply type byte ${type}`)
  }
}

/** Parses an INFO reply into key -> value. */
export function parseInfo(reply: Reply): Map<string, string> {
  const text = Buffer.isBuffer(reply) ? reply.toString() : String(reply)
  const m = new Map<string, string>()
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':')
    if (i > 0 && !line.startsWith('#')) m.set(line.slice(0, i), line.slice(i + 1))
  }
  return m
}

/** Parses `k=v,k=v` (a backupN line). */
export function parseFields(text: string): Map<string, string> {
  const m = new Map<string, string>()
  for (const part of text.split(',')) {
    const i = part.indexOf('=')
    if (i > 0) m.set(part.slice(0, i), part.slice(i + 1))
  }
  return m
}
