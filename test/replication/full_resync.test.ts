/**
 * A full resync, step by step, against a fake primary that controls exactly
 * what the backup gets: a new backup asks from LSN 0; the fake primary
 * answers +FULLRESYNC (horizon at segment 4, a commit LSN two blocks past
 * it, a reason) and closes; the backup discards its state and asks again
 * from the horizon with checksum 0; it gets the first block only. While it
 * holds less than that commit LSN it answers reads with -LOADING, INFO and
 * `freshet lag` show the progress and the reason; once the second block
 * arrives it serves reads.
 */
import { spawnSync } from 'node:child_process'
import net from 'node:net'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { initHash } from '../../src/codec/hash.js'
import { cleanupClusters, connect, disconnect, errorCode, info, startBackupNode, waitFor, type NodeHandle } from '../helpers/cluster.js'
import { blocksFrame, heartbeat, makeBlock } from '../helpers/link_frames.js'
import { MAIN_JS } from '../helpers/primary.js'

const SEGMENT_BYTES = 1 << 20
const HORIZON = 4 * SEGMENT_BYTES
const REASON = 'the test primary released everything below segment 4'

let server: net.Server
let backup: NodeHandle
const sockets = new Set<net.Socket>()
/** FRESHET.SYNC (from-lsn, checksum) of every connection, in order. */
const syncs: Array<[string, string]> = []
let first: Buffer
let second: Buffer
let commitLsn = 0
let sendSecond = false
let link: net.Socket | null = null
let port = 0

beforeAll(async () => {
  await initHash()
  first = makeBlock(HORIZON, 1, 'rs:a', 'alpha', { keyCount: 1 })
  second = makeBlock(HORIZON + first.length, 1, 'rs:b', 'beta', { keyCount: 2 })
  commitLsn = HORIZON + first.length + second.length
  server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => { /* the backup closes links itself */ })
    let buf = ''
    let answered = false
    socket.on('data', (chunk: Buffer) => {
      if (answered) return // ACKs
      buf += chunk.toString('latin1')
      const m = /FRESHET\.SYNC\r\n\$\d+\r\n\d+\r\n\$\d+\r\n(\d+)\r\n\$\d+\r\n\d+\r\n\$\d+\r\n(\d+)\r\n/i.exec(buf)
      if (m === null) return
      answered = true
      syncs.push([m[1], m[2]])
      if (Number(m[1]) < HORIZON) {
        socket.end(`+FULLRESYNC 1 ${HORIZON} ${commitLsn} ${SEGMENT_BYTES} ${REASON}\r\n`)
        return
      }
      link = socket
      // Only the first block is safe yet: the backup holds less than the commit LSN it must reach.
      // (A backup restarted after the first block asks from past it: nothing to send but heartbeats.)
      const safe = HORIZON + first.length
      const blocks = Number(m[1]) === HORIZON ? blocksFrame(first) : Buffer.alloc(0)
      socket.write(Buffer.concat([Buffer.from(`+SYNC 1 ${commitLsn} ${SEGMENT_BYTES}\r\n`), blocks, heartbeat(safe, Date.now(), safe, HORIZON, HORIZON)]))
      const timer = setInterval(() => {
        if (socket.destroyed) { clearInterval(timer); return }
        socket.write(heartbeat(sendSecond ? commitLsn : safe, Date.now(), sendSecond ? commitLsn : safe, HORIZON, HORIZON))
      }, 100)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  port = (server.address() as net.AddressInfo).port
  backup = await startBackupNode(port, { workers: 2, primaryAuth: null })
}, 60_000)

afterAll(async () => {
  for (const s of sockets) s.destroy()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  await cleanupClusters()
})

test('a new backup told to resync discards its state, follows from the horizon, and answers -LOADING until it holds the commit LSN', async () => {
  const c = connect(backup.port)
  try {
    await waitFor(async () => (await info(c, 'replication')).get('applied_lsn') === String(HORIZON + first.length), 15_000, 'the first block applied')
    expect(syncs[0][0], 'a new backup asks from LSN 0').toBe('0')
    expect(syncs[1], 'after the reset it asks from the horizon with checksum 0').toEqual([String(HORIZON), '0'])
    expect(backup.stderr()).toMatch(new RegExp(`full resync from the primary at LSN ${HORIZON} \\(visible by LSN ${commitLsn}\\): ${REASON}`))

    expect(await errorCode(c.get('rs:a')), 'reads wait for a consistent state').toBe('LOADING')
    expect(await errorCode(c.dbsize()), 'every command that reads data waits').toBe('LOADING')
    const p = await info(c, 'persistence')
    expect(p.get('loading')).toBe('1')
    expect(p.get('full_resyncs_total')).toBe('1')
    expect(p.get('full_resync_bytes_done')).toBe(String(first.length))
    expect(p.get('full_resync_bytes_total')).toBe(String(commitLsn - HORIZON))
    expect(p.get('full_resync_reason')).toBe(REASON)
    expect(p.get('horizon_lsn')).toBe(String(HORIZON))
    const lag = spawnSync(process.execPath, [MAIN_JS, 'lag', '--once', `127.0.0.1:${backup.port}`], { encoding: 'utf8', timeout: 20_000 })
    expect(lag.status).toBe(0)
    expect(lag.stdout).toMatch(new RegExp(`full resync: ${first.length} of ${commitLsn - HORIZON} bytes, [\\d.]+ MB/s, eta [\\d.]+ s \\(${REASON}\\)`))

    // A backup killed mid-resync comes back still loading: it never serves the partial state.
    await backup.node.kill9()
    const syncsBefore = syncs.length
    backup = await startBackupNode(port, { workers: 2, primaryAuth: null, dir: backup.dir })
    const c2 = connect(backup.port)
    try {
      await waitFor(() => syncs.length > syncsBefore, 15_000, 'the restarted backup to sync again')
      // From what it flushed: the first block, or (killed before its flush) the horizon again.
      expect([String(HORIZON + first.length), String(HORIZON)]).toContain(syncs[syncs.length - 1][0])
      expect(backup.stderr()).toMatch(/a full resync was under way \(to LSN \d+\): loading until it is visible/)
      expect(await errorCode(c2.get('rs:a')), 'still loading after the restart').toBe('LOADING')
      expect((await info(c2, 'persistence')).get('loading')).toBe('1')
      sendSecond = true
      link!.write(blocksFrame(second))
      await waitFor(async () => (await info(c2, 'persistence')).get('loading') === '0', 15_000, 'loading to end after the restart')
      expect(await c2.get('rs:b')).toBe('beta')
    } finally {
      disconnect(c2)
    }
    const c3 = connect(backup.port)
    await waitFor(async () => (await info(c3, 'persistence')).get('loading') === '0', 15_000, 'loading to end')
    expect(await c3.get('rs:a')).toBe('alpha')
    expect(await c3.get('rs:b')).toBe('beta')
    expect(await c3.dbsize()).toBe(2)
    disconnect(c3)
    expect(backup.stderr()).toMatch(/full resync done: \d+ bytes of log in \d+ ms; serving reads/)
  } finally {
    disconnect(c)
  }
}, 60_000)
