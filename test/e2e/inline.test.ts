/**
 * Inline requests (telnet, `nc`, scripts) follow redis-cli's quoting rules on a
 * real primary: quoted arguments keep their blanks, escapes are decoded, and a
 * request with unbalanced quotes is refused with a protocol error (the
 * connection closes after it, as for any protocol error).
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { startPrimary, type PrimaryProcess } from '../helpers/primary.js'
import { RawConn } from '../helpers/clients.js'

let primary: PrimaryProcess

beforeAll(async () => {
  primary = await startPrimary()
})

afterAll(async () => {
  await primary.stop()
})

test('quoted inline arguments keep blanks and decode escapes', async () => {
  const c = await RawConn.connect(primary.port)
  try {
    await c.write('SET inline:k "a b"\r\nGET inline:k\r\nSET inline:e "tab\\there\\x21"\r\nGET inline:e\r\nSET inline:s \'it\\\'s\'\r\nGET inline:s\r\n')
    const replies = await c.replies(6)
    expect(replies).toEqual([
      { type: 'simple', value: 'OK' }, { type: 'bulk', value: Buffer.from('a b') },
      { type: 'simple', value: 'OK' }, { type: 'bulk', value: Buffer.from('tab\there!') },
      { type: 'simple', value: 'OK' }, { type: 'bulk', value: Buffer.from("it's") },
    ])
  } finally {
    c.close()
  }
})

test('unbalanced quotes are a protocol error, and nothing of the request runs', async () => {
  const c = await RawConn.connect(primary.port)
  try {
    await c.write('SET inline:u "never closed\r\n')
    const replies = await c.replies(1)
    expect(replies.length).toBe(1)
    expect(replies[0].type).toBe('error')
    expect(String(replies[0].value).split(' ')[0]).toBe('ERR')
    expect(await c.waitClosed()).toBe(true)
  } finally {
    c.close()
  }
  const check = await RawConn.connect(primary.port)
  try {
    await check.write('EXISTS inline:u\r\n')
    expect(await check.replies(1)).toEqual([{ type: 'integer', value: '0' }])
  } finally {
    check.close()
  }
})
