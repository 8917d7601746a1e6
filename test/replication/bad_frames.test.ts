/**
 * Bad input on the replication link, from both ends (DESIGN §5: a clear
 * error, at most that connection closed, no crash, nothing applied).
 *
 * Fake backup (a raw socket) against a real primary with --requirepass:
 * FRESHET.SYNC without AUTH -> NOAUTH and no frames; another epoch -> EPOCH;
 * a from-lsn inside a block or past the log -> DIVERGED; after a valid
 * handshake, malformed ACK frames (wrong type byte, wrong length, NaN, LSNs
 * beyond the commit LSN) close that link only, while a real backup keeps
 * following.
 *
 * Fake primary (a net.Server here) against a real backup: after
 * `+SYNC 1 0 <segment-bytes>` it sends a corrupted block, a block at the
 * wrong LSN, a block of a higher epoch, an unknown frame type, and more. The
 * backup logs why it closed the link, applies nothing, reconnects from LSN 0
 * each time, and finally accepts a valid block. A valid frame followed by a
 * bad one in the same socket chunk must not leave the valid one received but
 * never flushed or applied.
 */
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { initHash, keyHash } from '../../src/codec/hash.js'
import { validateBlock } from '../../src/codec/record.js'
import { BLOCK_HEADER_BYTES } from '../../src/constants.js'
import { FAKE_KEY, FAKE_VALUE, FRAME_BLOCKS, FRAME_HEADER_BYTES, FRAME_HEARTBEAT, blocksFrame, frameHeader, heartbeat, makeBlock, resp } from '../helpers/link_frames.js'
import {
  Cluster, cleanupClusters, connect, info, lsnOf, startBackupNode, startPrimaryNode, waitApplied, waitFor,
  type NodeHandle,
} from '../helpers/cluster.js'

const FRAME_ACK = 3
const ACK_PAYLOAD_BYTES = 32
/** The cluster's --segment-size (1mb); the handshake reply carries it. */
const SEGMENT_BYTES = 1 << 20

beforeAll(async () => {
  await initHash()
})

afterAll(async () => {
  await cleanupClusters()
})

// ---------------------------------------------------------------- wire helpers

function ack(received: number, flushed: number, applied: number, lagMs: number, type = FRAME_ACK, length = ACK_PAYLOAD_BYTES): Buffer {
  const b = Buffer.alloc(FRAME_HEADER_BYTES + ACK_PAYLOAD_BYTES)
  b[0] = type
  b.writeUInt32LE(length, 4)
  b.writeDoubleLE(received, 8)
  b.writeDoubleLE(flushed, 16)
  b.writeDoubleLE(applied, 24)
  b.writeDoubleLE(lagMs, 32)
  return b
}

/** A raw TCP client that keeps everything it receives. */
class RawSocket {
  readonly socket: net.Socket
  received: Buffer
  closed: boolean

  private constructor(socket: net.Socket) {
    this.socket = socket
    this.received = Buffer.alloc(0)
    this.closed = false
    socket.on('data', (chunk: Buffer) => { this.received = Buffer.concat([this.received, chunk]) })
    socket.on('error', () => { /* a reset from the server shows up as `closed` */ })
    socket.on('close', () => { this.closed = true })
  }

  static connect(port: number): Promise<RawSocket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port })
      const timer = setTimeout(() => { socket.destroy(); reject(new Error(`connect ${port} timed out`)) }, 5_000)
      socket.once('connect', () => { clearTimeout(timer); resolve(new RawSocket(socket)) })
      socket.once('error', (err) => { clearTimeout(timer); reject(err) })
    })
  }

  write(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b)
  }

  /** Waits (bounded) until cond() or the socket closes; returns cond(). */
  async until(cond: () => boolean, timeoutMs = 15_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (!cond() && !this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    return cond()
  }

  /** What was received, split at CRLF. */
  lines(): string[] {
    return this.received.toString('latin1').split('\r\n')
  }

  close(): void {
    this.socket.destroy()
  }
}

/** Opens a link as a backup would: AUTH, FRESHET.SYNC; resolves with the socket and the +SYNC line. */
async function syncLink(port: number, password: string, epoch: number, fromLsn: number): Promise<{ s: RawSocket, line: string, rest: () => Buffer }> {
  const s = await RawSocket.connect(port)
  s.write(Buffer.concat([resp('AUTH', password), resp('FRESHET.SYNC', String(epoch), String(fromLsn), '0')]))
  await s.until(() => /\r\n[+-][^\r]*\r\n/.test(s.received.toString('latin1')))
  const text = s.received.toString('latin1')
  const first = text.indexOf('\r\n')
  const second = text.indexOf('\r\n', first + 2)
  const line = text.slice(first + 2, second)
  return { s, line, rest: () => s.received.subarray(second + 2) }
}

// ---------------------------------------------------------------- fake backup vs real primary

describe('a fake backup against a real primary', () => {
  let cluster: Cluster
  const password = 'link-secret'
  let commitLsn = 0

  beforeAll(async () => {
    cluster = await Cluster.start({ commit: 'async', password, workers: [1] })
    const c = cluster.primaryClient()
    const p = c.pipeline()
    for (let i = 0; i < 50; i++) p.set(`pre:${i}`, `value-${i}`)
    await p.exec()
    await c.set('pre:last', 'x')
    commitLsn = await lsnOf(c)
  }, 60_000)

  test('FRESHET.SYNC without AUTH gets NOAUTH and no frames; the connection stays RESP', async () => {
    const s = await RawSocket.connect(cluster.primary.port)
    s.write(resp('FRESHET.SYNC', '0', '0', '0'))
    await s.until(() => s.received.includes('\r\n'))
    expect(s.lines()[0]).toMatch(/^-NOAUTH/)
    await new Promise((r) => setTimeout(r, 300))
    expect(s.received.toString('latin1')).toMatch(/^-NOAUTH[^\r\n]*\r\n$/)
    s.write(resp('PING'))
    expect(await s.until(() => s.received.toString('latin1').endsWith('+PONG\r\n'))).toBe(true)
    expect((await cluster.primaryReplication()).get('connected_backups')).toBe('1')
    s.close()
  })

  test('another epoch gets EPOCH and the connection is closed', async () => {
    const { s, line } = await syncLink(cluster.primary.port, password, 99, 0)
    expect(line).toMatch(/^-EPOCH /)
    expect(await s.until(() => s.closed)).toBe(true)
  })

  test('a from-lsn inside a block, unaligned, or past the log gets DIVERGED', async () => {
    for (const from of [8, 48, commitLsn - 8, commitLsn + 8, commitLsn + 4096, commitLsn * 4]) {
      const { s, line } = await syncLink(cluster.primary.port, password, 1, from)
      expect(line, `from-lsn ${from} (commit ${commitLsn})`).toMatch(/^-DIVERGED /)
      expect(await s.until(() => s.closed), `closed after DIVERGED for ${from}`).toBe(true)
    }
  })

  test('a valid handshake gets +SYNC <epoch> <commit-lsn> and whole, checksummed blocks', async () => {
    const { s, line, rest } = await syncLink(cluster.primary.port, password, 0, 0)
    expect(line).toBe(`+SYNC 1 ${commitLsn} ${SEGMENT_BYTES} 1:0`)
    let blocksBytes = 0
    let blocks = 0
    const parse = (): boolean => {
      const b = rest()
      let at = 0
      blocksBytes = 0
      blocks = 0
      while (at + FRAME_HEADER_BYTES <= b.length) {
        const type = b[at]
        const length = b.readUInt32LE(at + 4)
        if (at + FRAME_HEADER_BYTES + length > b.length) break
        if (type === FRAME_BLOCKS) {
          const payload = new Uint8Array(b.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + length))
          const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
          for (let off = 0; off < length;) {
            const n = validateBlock(payload, dv, off, length - off, blocksBytes)
            if (n < 0) throw new Error(`invalid block at LSN ${blocksBytes}`)
            off += n
            blocksBytes += n
            blocks++
          }
        } else {
          expect(type).toBe(FRAME_HEARTBEAT)
        }
        at += FRAME_HEADER_BYTES + length
      }
      return blocksBytes >= commitLsn
    }
    expect(await s.until(parse)).toBe(true)
    expect(blocksBytes).toBe(commitLsn)
    expect(blocks).toBeGreaterThan(1)
    s.close()
  })

  test('malformed or impossible ACKs close that link only; the primary keeps serving', async () => {
    const cases: Array<[string, (commit: number) => Buffer, RegExp]> = [
      ['wrong type byte', (c) => ack(c, c, c, 0, 9), /malformed ack frame/],
      ['wrong payload length', (c) => ack(c, c, c, 0, FRAME_ACK, 31), /malformed ack frame/],
      ['garbage bytes', () => Buffer.alloc(FRAME_HEADER_BYTES + ACK_PAYLOAD_BYTES, 0xff), /malformed ack frame/],
      ['received beyond the commit LSN', (c) => ack(c + 1_000_000, c, c, 0), /ack for positions the primary never sent/],
      ['applied beyond received', (c) => ack(c, c, c + 8, 0), /ack for positions the primary never sent/],
      ['NaN positions', () => ack(Number.NaN, 0, 0, 0), /ack for positions the primary never sent/],
    ]
    for (const [name, make, reason] of cases) {
      const primaryReplication = await cluster.primaryReplication()
      const commit = Number(primaryReplication.get('commit_lsn'))
      const { s, line } = await syncLink(cluster.primary.port, password, 1, 0)
      expect(line, name).toBe(`+SYNC 1 ${commit} ${SEGMENT_BYTES} 1:0`)
      // A valid ACK first: accepted, the link stays up and shows as a backup.
      s.write(ack(commit, commit, commit, 0))
      await waitFor(async () => (await cluster.primaryReplication()).get('connected_backups') === '2', 15_000, `${name}: fake backup listed`)
      await new Promise((r) => setTimeout(r, 100))
      expect(s.closed, `${name}: a valid ACK keeps the link`).toBe(false)
      const stderrBefore = cluster.primary.stderr().length
      s.write(make(commit))
      expect(await s.until(() => s.closed), `${name}: link closed`).toBe(true)
      expect(cluster.primary.stderr().slice(stderrBefore), name).toMatch(reason)
      await waitFor(async () => (await cluster.primaryReplication()).get('connected_backups') === '1', 15_000, `${name}: fake backup gone`)
    }

    // The primary still runs and the real backup still follows.
    expect(cluster.primary.node.proc.exitCode).toBeNull()
    const c = cluster.primaryClient()
    expect(await c.ping()).toBe('PONG')
    await c.set('after-bad-acks', 'ok')
    const lsn = await lsnOf(c)
    expect(await waitApplied(cluster.backups[0].port, lsn)).toBeGreaterThanOrEqual(lsn)
    expect(await cluster.backupClient(0).get('after-bad-acks')).toBe('ok')
  }, 60_000)

  test('a fake backup that acks nothing is dropped after LINK_TIMEOUT_MS; real backups ack while idle and stay', async () => {
    const { s, line } = await syncLink(cluster.primary.port, password, 1, 0)
    expect(line).toMatch(/^\+SYNC /)
    await waitFor(async () => (await cluster.primaryReplication()).get('connected_backups') === '2', 15_000, 'fake backup listed')
    const stderrBefore = cluster.primary.stderr().length
    // Bounded by the test's own timeout, not an upper bound on the primary's timing.
    expect(await s.until(() => s.closed, 20_000), 'a silent link is closed').toBe(true)
    expect(cluster.primary.stderr().slice(stderrBefore)).toMatch(/link closed \(no ACK for \d+ ms\)/)
    // The real backup, idle all along, acked at its interval and was not dropped.
    expect(cluster.primary.stderr().slice(stderrBefore).match(/no ACK/g)?.length).toBe(1)
    await waitFor(async () => (await cluster.primaryReplication()).get('connected_backups') === '1', 15_000, 'only the real backup')
    const c = cluster.primaryClient()
    await c.set('after-silent-link', 'ok')
    const lsn = await lsnOf(c)
    expect(await waitApplied(cluster.backups[0].port, lsn)).toBeGreaterThanOrEqual(lsn)
  }, 60_000)
})

describe('a fake backup that acks what was never sent to it (remote-flush)', () => {
  const password = 'flush-secret'
  let primary: NodeHandle
  const VALUE_BYTES = 64 * 1024
  /** Far more than the primary buffers for one backup (SHIP_INFLIGHT_BYTES_MAX, 32 MiB) plus socket buffers. */
  const WRITES = 900

  beforeAll(async () => {
    primary = await startPrimaryNode({ commit: 'remote-flush', syncBackups: 1, password })
  }, 60_000)

  test('an ACK past the backup\'s cursor closes its link and releases nothing', async () => {
    // Writes nobody acks: executed and logged, replies held until a backup flushes them.
    const writer = await RawSocket.connect(primary.port)
    const value = 'v'.repeat(VALUE_BYTES)
    writer.write(resp('AUTH', password))
    for (let i = 0; i < WRITES; i++) writer.write(resp('SET', `held:${i}`, value))
    const admin = connect(primary.port)
    const commitLsn = async (): Promise<number> => Number((await info(admin, 'replication')).get('commit_lsn'))
    await waitFor(async () => await commitLsn() >= WRITES * VALUE_BYTES, 60_000, 'the writes to be logged')
    const held = (): number => (writer.received.toString('latin1').match(/\+OK/g) ?? []).length
    expect(held(), 'only AUTH answered: remote-flush holds the SET replies').toBe(1)

    // A backup that never reads: the primary ships until its in-flight bound, then waits.
    const fake = await RawSocket.connect(primary.port)
    fake.socket.pause()
    fake.write(Buffer.concat([resp('AUTH', password), resp('FRESHET.SYNC', '0', '0', '0')]))
    await waitFor(async () => (await info(admin, 'replication')).get('connected_backups') === '1', 10_000, 'the fake backup to be listed')
    const stderrBefore = primary.stderr().length
    const end = await commitLsn()
    fake.write(ack(end, end, end, 0))
    await waitFor(async () => (await info(admin, 'replication')).get('connected_backups') === '0', 10_000, 'the lying link to be closed')
    expect(primary.stderr().slice(stderrBefore)).toMatch(/link closed \(ack for positions the primary never sent \(LSN \d+, sent to this backup up to LSN \d+\)\)/)
    // Nothing was released: the held replies are still held.
    await new Promise((r) => setTimeout(r, 300))
    expect(held()).toBe(1)
    expect(primary.node.proc.exitCode).toBeNull()
    writer.close()
    fake.close()
    admin.disconnect()
  }, 120_000)
})

// ---------------------------------------------------------------- fake primary vs real backup

interface Scenario {
  name: string
  /** What the fake primary answers to FRESHET.SYNC. */
  reply: () => Buffer
  /** What the backup's log line says. */
  logged: RegExp
}

describe('a fake primary against a real backup', () => {
  const good = (): Buffer => makeBlock(0, 1)
  const scenarios: Scenario[] = [
    {
      name: 'a corrupted block (one bit flipped)',
      reply: () => { const b = good(); b[b.length - 9] ^= 0x10; return blocksFrame(b) },
      logged: /closing link to primary: invalid block at LSN 0/,
    },
    {
      name: 'a block with the wrong start LSN (reordered)',
      reply: () => blocksFrame(makeBlock(good().length, 1)),
      logged: /closing link to primary: invalid block at LSN 0/,
    },
    {
      name: 'a block from a higher epoch',
      reply: () => blocksFrame(makeBlock(0, 2)),
      logged: /closing link to primary: block at LSN 0 has epoch 2/,
    },
    {
      name: 'an unknown frame type',
      reply: () => Buffer.concat([frameHeader(7, 16), Buffer.alloc(16)]),
      logged: /closing link to primary: unknown frame type 7/,
    },
    {
      name: 'a BLOCKS frame shorter than its first block',
      reply: () => { const b = good(); return Buffer.concat([frameHeader(FRAME_BLOCKS, BLOCK_HEADER_BYTES), b]) },
      logged: /closing link to primary: block length \d+ in a frame of 48/,
    },
    {
      name: 'a valid block followed by a corrupted one in the same frame',
      reply: () => { const a = good(); const b = makeBlock(a.length, 1, 'fake:second', 'v2'); b[20] ^= 1; return blocksFrame(a, b) },
      logged: /closing link to primary: invalid block at LSN \d+/,
    },
    {
      name: 'a HEARTBEAT frame of the wrong length',
      reply: () => Buffer.concat([frameHeader(FRAME_HEARTBEAT, 12), Buffer.alloc(12)]),
      logged: /closing link to primary: HEARTBEAT frame of 12 bytes/,
    },
    // Checksum-valid nonsense: every field a backup trusts is checked, not only the checksum.
    {
      // Reads walk the version chain through prevRef: a ref pointing at itself never ends.
      name: 'an op whose prevRef is its own ref',
      reply: () => blocksFrame(makeBlock(0, 1, FAKE_KEY, FAKE_VALUE, { prevRef: BLOCK_HEADER_BYTES / 8 })),
      logged: /closing link to primary: invalid block at LSN 0: prevRef not below/,
    },
    {
      name: 'an op whose prevRef points forward',
      reply: () => blocksFrame(makeBlock(0, 1, FAKE_KEY, FAKE_VALUE, { prevRef: 4096 })),
      logged: /closing link to primary: invalid block at LSN 0: prevRef not below/,
    },
    {
      name: 'a NaN commit time',
      reply: () => blocksFrame(makeBlock(0, 1, FAKE_KEY, FAKE_VALUE, { commitTimeMs: Number.NaN })),
      logged: /closing link to primary: invalid block at LSN 0: commit time/,
    },
    {
      name: 'a negative commit time',
      reply: () => blocksFrame(makeBlock(0, 1, FAKE_KEY, FAKE_VALUE, { commitTimeMs: -5 })),
      logged: /closing link to primary: invalid block at LSN 0: commit time/,
    },
    {
      // The key would be installed under the wrong hash: unreachable by GET.
      name: 'a key hash that is not the hash of the key',
      reply: () => blocksFrame(makeBlock(0, 1, FAKE_KEY, FAKE_VALUE, { hash: (keyHash(Buffer.from(FAKE_KEY), 0, FAKE_KEY.length) ^ 1) >>> 0 })),
      logged: /closing link to primary: invalid block at LSN 0: key hash/,
    },
    {
      // DBSIZE reads it: one SET on an empty log leaves 0 or 1 live keys, never 4 billion.
      name: 'an absurd live-key count',
      reply: () => blocksFrame(makeBlock(0, 1, FAKE_KEY, FAKE_VALUE, { keyCount: 0xfffffff0 })),
      logged: /closing link to primary: invalid block at LSN 0: live-key count/,
    },
    {
      name: 'a second block whose key count drops by more than its deletes',
      reply: () => { const a = good(); return blocksFrame(a, makeBlock(a.length, 1, 'fake:second', 'v2', { keyCount: 0 })) },
      logged: /closing link to primary: invalid block at LSN \d+: live-key count/,
    },
    {
      // A block never needs to skip a whole segment: from a segment start, it starts right there.
      name: 'a first block that skips the whole first segment',
      reply: () => blocksFrame(makeBlock(SEGMENT_BYTES, 1)),
      logged: new RegExp(`closing link to primary: block starts at LSN ${SEGMENT_BYTES}, expected 0 or 0`),
    },
    {
      name: 'a heartbeat with a NaN commit LSN',
      reply: () => heartbeat(Number.NaN, Date.now(), 0),
      logged: /closing link to primary: HEARTBEAT commit LSN NaN/,
    },
    {
      name: 'a heartbeat with a safe LSN past its commit LSN',
      reply: () => heartbeat(0, Date.now(), 1 << 30),
      logged: /closing link to primary: HEARTBEAT safe LSN/,
    },
    {
      name: 'a heartbeat with an infinite commit time',
      reply: () => heartbeat(0, Number.POSITIVE_INFINITY, 0),
      logged: /closing link to primary: HEARTBEAT commit time/,
    },
    {
      name: 'a heartbeat with a horizon that is not a segment start',
      reply: () => heartbeat(0, Date.now(), 0, 8, 8),
      logged: /closing link to primary: HEARTBEAT horizon 8/,
    },
    {
      name: 'a heartbeat whose horizon moved after its commit LSN',
      reply: () => heartbeat(0, Date.now(), 0, 0, 4096),
      logged: /closing link to primary: HEARTBEAT horizon 0 after 4096/,
    },
  ]

  let server: net.Server
  let fakePort = 0
  let backup: NodeHandle
  /** FRESHET.SYNC arguments of every connection, in order. */
  const syncs: string[][] = []
  const sockets = new Set<net.Socket>()
  let serveGood = false
  let heartbeatTimer: NodeJS.Timeout | null = null

  beforeAll(async () => {
    let next = 0
    server = net.createServer((socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      socket.on('error', () => { /* the backup closes links it rejects */ })
      let buf = ''
      let answered = false
      socket.on('data', (chunk: Buffer) => {
        if (answered) return // ACKs
        buf += chunk.toString('latin1')
        const m = /FRESHET\.SYNC\r\n\$\d+\r\n(\d+)\r\n\$\d+\r\n(\d+)\r\n\$\d+\r\n(\d+)\r\n/i.exec(buf)
        if (m === null) return
        answered = true
        syncs.push([m[1], m[2], m[3]])
        if (!serveGood && next < scenarios.length) {
          socket.write(Buffer.concat([Buffer.from(`+SYNC 1 0 ${SEGMENT_BYTES}\r\n`), scenarios[next++].reply()]))
        } else if (!serveGood) {
          // Between the bad scenarios and the good one: refuse politely.
          socket.write('-ERR not yet\r\n')
        } else {
          const b = good()
          socket.write(Buffer.concat([Buffer.from(`+SYNC 1 ${b.length} ${SEGMENT_BYTES}\r\n`), blocksFrame(b), heartbeat(b.length)]))
          heartbeatTimer = setInterval(() => { if (!socket.destroyed) socket.write(heartbeat(b.length)) }, 200)
        }
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    fakePort = (server.address() as net.AddressInfo).port
    backup = await startBackupNode(fakePort, { workers: 2, primaryAuth: null })
  }, 60_000)

  afterAll(async () => {
    if (heartbeatTimer !== null) clearInterval(heartbeatTimer)
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })

  test('every bad frame closes the link with its reason; nothing is applied; the backup reconnects', async () => {
    await waitFor(() => syncs.length > scenarios.length, 20_000, `the backup to reconnect past all ${scenarios.length} bad scenarios (${syncs.length} so far)`)
    await waitFor(() => /primary refused the link/.test(backup.stderr()), 15_000, 'the backup to log the refusal')
    const log = backup.stderr()
    for (const s of scenarios) expect(log, s.name).toMatch(s.logged)
    expect(log).toMatch(/primary refused the link: ERR not yet/)
    expect((log.match(/closing link to primary/g) ?? []).length).toBeGreaterThanOrEqual(scenarios.length)
    // Every reconnect resumes from LSN 0: nothing was accepted.
    for (const [epoch, from] of syncs) {
      expect(from).toBe('0')
      expect(['0', '1']).toContain(epoch)
    }
    expect(syncs[0][0]).toBe('0')

    expect(backup.node.proc.exitCode, 'backup still running').toBeNull()
    const c = connect(backup.port)
    const repl = await info(c, 'replication')
    expect(repl.get('freshet_role')).toBe('backup')
    expect(repl.get('applied_lsn')).toBe('0')
    expect(repl.get('received_lsn')).toBe('0')
    expect(repl.get('flushed_lsn')).toBe('0')
    expect(await c.dbsize()).toBe(0)
    expect(await c.get(FAKE_KEY)).toBeNull()
    expect(await c.get('fake:second')).toBeNull()
  }, 30_000)

  test('after all that, a valid block is received and applied', async () => {
    serveGood = true
    const end = good().length
    const c = connect(backup.port)
    expect(Number(await c.call('WAITLSN', String(end), '10000'))).toBe(end)
    expect(await c.get(FAKE_KEY)).toBe(FAKE_VALUE)
    expect(await c.dbsize()).toBe(1)
    const repl = await info(c, 'replication')
    expect(repl.get('link')).toBe('up')
    expect(repl.get('primary')).toBe(`127.0.0.1:${fakePort}`)
    expect(backup.node.proc.exitCode).toBeNull()
  }, 30_000)
})

describe('a fake primary: a valid frame and a bad frame in one socket chunk', () => {
  let server: net.Server
  let backup: NodeHandle
  const sockets = new Set<net.Socket>()
  const syncs: string[] = []
  const timers: NodeJS.Timeout[] = []

  beforeAll(async () => {
    const a = makeBlock(0, 1)
    server = net.createServer((socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      socket.on('error', () => { /* the backup closes links it rejects */ })
      let buf = ''
      let answered = false
      socket.on('data', (chunk: Buffer) => {
        if (answered) return
        buf += chunk.toString('latin1')
        const m = /FRESHET\.SYNC\r\n\$\d+\r\n\d+\r\n\$\d+\r\n(\d+)\r\n/i.exec(buf)
        if (m === null) return
        answered = true
        const from = Number(m[1])
        syncs.push(m[1])
        if (syncs.length === 1) {
          // One write: the handshake reply, a valid frame, then an unknown frame type.
          socket.write(Buffer.concat([Buffer.from(`+SYNC 1 ${a.length} ${SEGMENT_BYTES}\r\n`), blocksFrame(a), frameHeader(7, 0)]))
          return
        }
        // Later links: an idle primary whose log is block A. Send A again only if
        // the backup does not have it; then heartbeats.
        socket.write(Buffer.concat([Buffer.from(`+SYNC 1 ${a.length} ${SEGMENT_BYTES}\r\n`), from === 0 ? blocksFrame(a) : Buffer.alloc(0), heartbeat(a.length)]))
        timers.push(setInterval(() => { if (!socket.destroyed) socket.write(heartbeat(a.length)) }, 200))
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    backup = await startBackupNode((server.address() as net.AddressInfo).port, { workers: 1, primaryAuth: null })
  }, 60_000)

  afterAll(async () => {
    for (const t of timers) clearInterval(t)
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })

  test('the valid frame is either dropped or flushed and applied, never left half-taken', async () => {
    await waitFor(() => syncs.length >= 2, 10_000, 'the backup to reconnect')
    expect(backup.stderr()).toMatch(/closing link to primary: unknown frame type 7/)
    const end = makeBlock(0, 1).length
    const c = connect(backup.port)
    let repl = await info(c, 'replication')
    // Whatever the backup kept (received_lsn) it must flush and make visible.
    await waitFor(async () => {
      repl = await info(c, 'replication')
      return repl.get('link') === 'up' && repl.get('applied_lsn') === repl.get('received_lsn') && repl.get('flushed_lsn') === repl.get('received_lsn')
    }, 15_000, 'applied_lsn and flushed_lsn to reach received_lsn').catch(() => { /* asserted below with the values */ })
    const fields = ['received_lsn', 'flushed_lsn', 'applied_lsn'].map((f) => `${f}=${repl.get(f)}`).join(' ')
    expect(repl.get('applied_lsn'), `resumed from LSN ${syncs[1]}; ${fields}`).toBe(repl.get('received_lsn'))
    expect(repl.get('flushed_lsn'), `resumed from LSN ${syncs[1]}; ${fields}`).toBe(repl.get('received_lsn'))
    // And since the primary's log is block A, the backup ends up with it.
    expect(Number(await c.call('WAITLSN', String(end), '15000'))).toBe(end)
    expect(await c.get(FAKE_KEY)).toBe(FAKE_VALUE)
  }, 30_000)
})
