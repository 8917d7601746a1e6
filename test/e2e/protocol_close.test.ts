/**
 * How a connection ends after a protocol error: the error reply, then a clean
 * end of stream, even for a client that is still writing and has not read
 * yet (a pipelining client, or any client on a busy machine). Closing a
 * socket with unread input is a reset, and a reset can destroy the reply
 * before the client reads it; so the server drops the rest of the input for a
 * bounded time after the error instead.
 */
import net from 'node:net'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { startPrimary, type PrimaryProcess } from '../helpers/primary.js'
import { parseReplies, rawCommand } from '../helpers/clients.js'

const TAIL_BYTES_MAX = 512 * 1024 * 1024

let primary: PrimaryProcess

beforeAll(async () => {
  primary = await startPrimary({ commit: 'local', segmentSize: '1mb' })
})

afterAll(async () => {
  expect((await primary.stop()).code).toBe(0)
})

/**
 * Sends `head`, then at least `tailBytes` more input for at least `tailMsMin`
 * (bounded by TAIL_BYTES_MAX) without reading anything (the socket is
 * paused), then reads. Returns what was read and how it ended.
 */
async function writeBeforeReading(head: Buffer, tailBytes: number, tailMsMin = 0): Promise<{ received: Buffer, error: string | null, ended: boolean }> {
  const socket = net.connect({ port: primary.port, host: '127.0.0.1' })
  socket.pause()
  let error: string | null = null
  let ended = false
  const chunks: Buffer[] = []
  socket.on('error', (err: NodeJS.ErrnoException) => { error = err.code ?? 'unknown' })
  socket.on('end', () => { ended = true })
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const written = (bytes: Buffer): Promise<void> => new Promise((resolve) => { socket.write(bytes, () => resolve()) })
  await written(head)
  const filler = Buffer.alloc(64 * 1024, 0x61)
  // Each write completes once the kernel took it, that is once the server reads on.
  const t0 = Date.now()
  for (let sent = 0; (sent < tailBytes || Date.now() - t0 < tailMsMin) && sent < TAIL_BYTES_MAX && !socket.destroyed; sent += filler.length) {
    await written(filler)
  }
  socket.on('data', (d: Buffer) => { chunks.push(d) })
  socket.resume()
  let timer: NodeJS.Timeout | undefined
  await Promise.race([closed, new Promise((resolve) => { timer = setTimeout(resolve, 10_000) })])
  clearTimeout(timer)
  socket.destroy()
  return { received: Buffer.concat(chunks), error, ended }
}

test('a client still writing after a protocol error reads the error reply, then a clean end of stream', async () => {
  // A bulk length past the parser's bound: a protocol error at once; input goes on for 250 ms, unread
  // (the old server reset the connection 100 ms after the error; the linger bound is 2 s).
  const bad = Buffer.from('*2\r\n$3\r\nGET\r\n$999999999999\r\n')
  const r = await writeBeforeReading(bad, 1024 * 1024, 250)
  expect(parseReplies(r.received).map((x) => x.type === 'error' ? x.value.split(' ')[0] : x.type)).toEqual(['ERR'])
  expect(r.ended).toBe(true)
  expect(r.error).not.toBe('ECONNRESET')
  expect(await rawCommand(primary.port, 'PING')).toEqual({ type: 'simple', value: 'PONG' })
})

test('a client that overflows the query buffer without reading gets the error reply', async () => {
  // One never-ending command: the query buffer bound (64 MiB) is crossed, then 8 MiB more arrive unread.
  const head = Buffer.from('*1000000\r\n$3\r\nSET\r\n')
  const r = await writeBeforeReading(head, 72 * 1024 * 1024)
  expect(parseReplies(r.received).map((x) => x.type === 'error' ? x.value.split(' ')[0] : x.type)).toEqual(['ERR'])
  expect(r.ended).toBe(true)
  expect(await rawCommand(primary.port, 'PING')).toEqual({ type: 'simple', value: 'PONG' })
})
