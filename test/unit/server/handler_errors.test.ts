/**
 * The connection boundary of the RESP server: whatever a command handler
 * throws, the node goes on. An operating error (DbError) is the command's
 * error reply; any other exception (a bug that input reached) is an error
 * reply plus a logged stack, counted in INFO stats. The partial reply a
 * handler wrote before throwing is dropped, so the reply stream stays in step
 * with the commands (pipelined and inside MULTI). Runs a real RespServer on
 * loopback over a stub node.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { RespServer } from '../../../src/server/server.js'
import type { ServedNode } from '../../../src/node.js'
import { CommandRegistry, InfoRegistry } from '../../../src/server/registry.js'
import { SHARED_COMMANDS } from '../../../src/server/tables.js'
import type { CommandSpec } from '../../../src/server/commands.js'
import { dbError } from '../../../src/errors.js'
import type { ReadView } from '../../../src/view/read_view.js'
import { RawConn, encodeCommand, parseInfo, type Reply } from '../../helpers/clients.js'

const logged: string[] = []

const throwing: CommandSpec[] = [
  // Writes part of a reply, then fails like a bug would.
  { name: 'boom', arity: 1, flags: 0, run: (s) => { s.conn.out.arrayHeader(3); s.conn.out.integer(1); throw new TypeError('a bug reached by input') } },
  { name: 'boomstr', arity: 1, flags: 0, run: () => { throw 'not even an Error' } },
  { name: 'oops', arity: 1, flags: 0, run: () => { throw dbError('INVALID_OPTION', 'an operating error') } },
]

function stubNode(): ServedNode {
  const view = { observedLsn: -1, observe: () => {} } as unknown as ReadView
  return { role: 'backup', view, writer: null, releasedLsn: () => 0, waitLsn: () => -1, endTurn: () => {}, keyCount: () => 0, resetStats: () => {}, loading: () => null, heldReplyBoundMs: () => 0, heldReplyError: () => '', expiryStats: () => ({ expiring: 0, expired: 0, cycleMs: 0 }), setActiveExpiry: () => {}, freshness: null }
}

let server: RespServer

beforeAll(async () => {
  server = new RespServer(stubNode(), {
    host: '127.0.0.1', port: 0, requirepass: null, maxClients: 16, valueBytesMax: 1024 * 1024, log: (line) => logged.push(line), shutdown: null,
  }, new CommandRegistry(...SHARED_COMMANDS, throwing), new InfoRegistry())
  await server.listen()
})

afterAll(async () => {
  await server.close()
})

function code(r: Reply): string {
  return r.type === 'error' ? r.value.split(' ')[0] : `<${r.type}>`
}

test('an unexpected exception in a handler is an error reply and a logged stack; the node and the connection go on', async () => {
  const c = await RawConn.connect(server.port)
  try {
    await c.write(Buffer.concat([
      encodeCommand('PING'), encodeCommand('BOOM'), encodeCommand('PING'), encodeCommand('BOOMSTR'), encodeCommand('OOPS'), encodeCommand('ECHO', 'still here'),
    ]))
    const replies = await c.replies(6)
    expect(replies.map(code)).toEqual(['<simple>', 'ERR', '<simple>', 'ERR', 'ERR', '<bulk>'])
    expect(replies[5]).toEqual({ type: 'bulk', value: Buffer.from('still here') })
    expect(c.closed).toBe(false)
  } finally {
    c.close()
  }
  expect(logged.some((l) => l.includes('TypeError') && l.includes('boom'))).toBe(true)
  const info = await RawConn.connect(server.port)
  try {
    await info.write(encodeCommand('INFO', 'stats'))
    const [r] = await info.replies(1)
    expect(r.type).toBe('bulk')
    expect(parseInfo((r.value as Buffer).toString()).internal_errors).toBe('2')
  } finally {
    info.close()
  }
})

test('inside MULTI, a throwing command is one error element of EXEC\'s reply', async () => {
  const c = await RawConn.connect(server.port)
  try {
    await c.write(Buffer.concat([
      encodeCommand('MULTI'), encodeCommand('PING'), encodeCommand('BOOM'), encodeCommand('ECHO', 'x'), encodeCommand('EXEC'), encodeCommand('PING'),
    ]))
    const replies = await c.replies(6)
    expect(replies.length).toBe(6)
    const exec = replies[4]
    expect(exec.type).toBe('array')
    const items = exec.value as Reply[]
    expect(items.map(code)).toEqual(['<simple>', 'ERR', '<bulk>'])
    expect(code(replies[5])).toBe('<simple>')
  } finally {
    c.close()
  }
})
