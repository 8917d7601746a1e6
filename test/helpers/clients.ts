/**
 * Clients for end-to-end tests: ioredis connections and raw sockets, both put
 * in a registry that cleanupClients() (registered afterAll here; files may
 * also call it from afterEach) closes. Plus a minimal RESP encoder and reply
 * parser for raw-socket tests, and INFO parsing.
 */
import net from 'node:net'
import { Redis, type RedisOptions } from 'ioredis'
import { afterAll } from 'vitest'

const QUIT_TIMEOUT_MS = 1_000

const liveClients = new Set<Redis>()
const liveSockets = new Set<net.Socket>()

afterAll(async () => {
  await cleanupClients()
})

/**
 * An ioredis client on loopback. Errors the client emits (a killed server)
 * are recorded on `errors` instead of being printed as unhandled.
 */
export function connectClient(port: number, extra: Partial<RedisOptions> = {}): Redis & { errors: Error[] } {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: false, maxRetriesPerRequest: 1, ...extra }) as Redis & { errors: Error[] }
  client.errors = []
  client.on('error', (err: Error) => { client.errors.push(err) })
  liveClients.add(client)
  return client
}

/** An ioredis client that never reconnects (for servers the test kills). */
export function connectOnce(port: number, extra: Partial<RedisOptions> = {}): Redis & { errors: Error[] } {
  return connectClient(port, { retryStrategy: () => null, ...extra })
}

export async function closeClient(client: Redis): Promise<void> {
  liveClients.delete(client)
  if (client.status === 'end') return
  if (client.status !== 'ready') { client.disconnect(); return }
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      client.quit().catch(() => 'closed'),
      new Promise((resolve) => { timer = setTimeout(resolve, QUIT_TIMEOUT_MS) }),
    ])
  } finally {
    clearTimeout(timer)
    client.disconnect()
  }
}

export async function cleanupClients(): Promise<void> {
  await Promise.all([...liveClients].map((c) => closeClient(c)))
  for (const s of liveSockets) s.destroy()
  liveSockets.clear()
}

/** The leading code word of a rejected command (ERR, NOAUTH, OOM, ...). Fails if it resolves. */
export async function errorCode(p: Promise<unknown>): Promise<string> {
  let value: unknown
  try {
    value = await p
  } catch (err) {
    return String((err as Error).message).split(' ')[0]
  }
  throw new Error(`expected an error reply, got ${JSON.stringify(value)}`)
}

/** INFO text → { key: value }. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\r\n')) {
    if (line === '' || line.startsWith('#')) continue
    const i = line.indexOf(':')
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1)
  }
  return out
}

export async function infoField(client: Redis, section: string, key: string): Promise<string | undefined> {
  return parseInfo(await client.info(section))[key]
}

// ---------------------------------------------------------------- raw RESP

export function encodeCommand(...args: Array<string | Buffer | number>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)]
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a))
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'))
  }
  return Buffer.concat(parts)
}

export type Reply =
  | { type: 'simple', value: string }
  | { type: 'error', value: string }
  | { type: 'integer', value: string }
  | { type: 'bulk', value: Buffer | null }
  | { type: 'array', value: Reply[] | null }
  // RESP3 types (after HELLO 3)
  | { type: 'null', value: null }
  | { type: 'map', value: Reply[] }
  | { type: 'verbatim', value: Buffer }
  | { type: 'double', value: string }
  | { type: 'boolean', value: string }

/** Parses one reply at `at`; returns null if incomplete. Throws on bytes that are not RESP. */
export function parseReply(buf: Buffer, at = 0): { reply: Reply, end: number } | null {
  if (at >= buf.length) return null
  const nl = buf.indexOf('\r\n', at)
  if (nl < 0) return null
  const type = String.fromCharCode(buf[at])
  const line = buf.toString('latin1', at + 1, nl)
  switch (type) {
    case '+': return { reply: { type: 'simple', value: line }, end: nl + 2 }
    case '-': return { reply: { type: 'error', value: line }, end: nl + 2 }
    case ':': return { reply: { type: 'integer', value: line }, end: nl + 2 }
    case '_': return { reply: { type: 'null', value: null }, end: nl + 2 }
    case ',': return { reply: { type: 'double', value: line }, end: nl + 2 }
    case '#': return { reply: { type: 'boolean', value: line }, end: nl + 2 }
    case '=': {
      const n = Number(line)
      if (nl + 2 + n + 2 > buf.length) return null
      return { reply: { type: 'verbatim', value: buf.subarray(nl + 2, nl + 2 + n) }, end: nl + 2 + n + 2 }
    }
    case '%': {
      const items: Reply[] = []
      let end = nl + 2
      for (let i = 0; i < 2 * Number(line); i++) {
        const r = parseReply(buf, end)
        if (r === null) return null
        items.push(r.reply)
        end = r.end
      }
      return { reply: { type: 'map', value: items }, end }
    }
    case '$': {
      const n = Number(line)
      if (n < 0) return { reply: { type: 'bulk', value: null }, end: nl + 2 }
      if (nl + 2 + n + 2 > buf.length) return null
      return { reply: { type: 'bulk', value: buf.subarray(nl + 2, nl + 2 + n) }, end: nl + 2 + n + 2 }
    }
    case '*': {
      const n = Number(line)
      if (n < 0) return { reply: { type: 'array', value: null }, end: nl + 2 }
      const items: Reply[] = []
      let end = nl + 2
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, end)
        if (r === null) return null
        items.push(r.reply)
        end = r.end
      }
      return { reply: { type: 'array', value: items }, end }
    }
    default: throw new Error(`not a RESP reply at ${at}: ${JSON.stringify(buf.toString('latin1', at, Math.min(buf.length, at + 32)))}`)
  }
}

/** All complete replies in `buf`. */
export function parseReplies(buf: Buffer): Reply[] {
  const out: Reply[] = []
  let at = 0
  for (let i = 0; i < 1_000_000; i++) {
    const r = parseReply(buf, at)
    if (r === null) break
    out.push(r.reply)
    at = r.end
  }
  return out
}

/** A raw TCP connection that accumulates everything it receives. */
export class RawConn {
  readonly socket: net.Socket
  received: Buffer
  closed: boolean
  readonly closedPromise: Promise<void>
  private waiters: Array<() => void>

  private constructor(socket: net.Socket) {
    this.socket = socket
    this.received = Buffer.alloc(0)
    this.closed = false
    this.waiters = []
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk])
      this.wake()
    })
    socket.on('error', () => { /* a reset by the server shows as `closed` */ })
    this.closedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        this.closed = true
        liveSockets.delete(socket)
        this.wake()
        resolve()
      })
    })
  }

  static connect(port: number, timeoutMs = 5_000): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1' })
      liveSockets.add(socket)
      const timer = setTimeout(() => { socket.destroy(); reject(new Error(`connect to ${port} timed out`)) }, timeoutMs)
      socket.once('connect', () => { clearTimeout(timer); socket.setNoDelay(true); resolve(new RawConn(socket)) })
      socket.once('error', (err) => { clearTimeout(timer); reject(err) })
    })
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  /** Writes bytes; resolves when they are handed to the kernel (or the socket is gone). */
  write(bytes: Buffer | string): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed || this.socket.destroyed) { resolve(); return }
      this.socket.write(bytes, () => resolve())
    })
  }

  /** Waits until `cond()` holds, the socket closes, or timeoutMs passes. Returns cond(). */
  async until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (!cond() && !this.closed) {
      const left = deadline - Date.now()
      if (left <= 0) break
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
    return cond()
  }

  /** Waits for at least `count` complete replies (bounded) and returns all parsed so far. */
  async replies(count: number, timeoutMs = 5_000): Promise<Reply[]> {
    await this.until(() => parseReplies(this.received).length >= count, timeoutMs)
    return parseReplies(this.received)
  }

  /** Waits (bounded) for the server to close the connection; returns whether it did. */
  async waitClosed(timeoutMs = 5_000): Promise<boolean> {
    await this.until(() => this.closed, timeoutMs)
    return this.closed
  }

  close(): void {
    this.socket.destroy()
  }
}

/** One command on a fresh raw connection; returns its first reply (bounded). */
export async function rawCommand(port: number, ...args: Array<string | Buffer | number>): Promise<Reply> {
  const c = await RawConn.connect(port)
  try {
    await c.write(encodeCommand(...args))
    const replies = await c.replies(1)
    if (replies.length === 0) throw new Error(`no reply to ${String(args[0])} within the timeout (closed: ${c.closed})`)
    return replies[0]
  } finally {
    c.close()
  }
}
