/**
 * Version chains only go back in the log. A prevRef that points forward or to
 * itself (or into another op's bytes that point forward again) cannot be
 * followed forever: the walk ends at the first link that does not go back.
 */
import { expect, test } from 'vitest'
import { LSN_ALIGN_BYTES, OP_PREV_REF_OFFSET, REF_NONE } from '../../../src/constants.js'
import { resolveVisible, type LogSegments } from '../../../src/index/indirection.js'

function logWith(links: Array<[ref: number, prev: number]>): LogSegments {
  const bytes = new Uint8Array(4096)
  const dv = new DataView(bytes.buffer)
  for (const [ref, prev] of links) dv.setUint32(ref * LSN_ALIGN_BYTES + OP_PREV_REF_OFFSET, prev, true)
  return { segmentBytes: bytes.length, u8: [bytes], dv: [dv] }
}

test('a chain that goes back in the log is followed to the newest visible version', () => {
  const log = logWith([[40, 20], [20, 10], [10, REF_NONE]])
  expect(resolveVisible(log, 40, 25 * LSN_ALIGN_BYTES)).toBe(20)
  expect(resolveVisible(log, 40, 11 * LSN_ALIGN_BYTES)).toBe(10)
  expect(resolveVisible(log, 40, 5 * LSN_ALIGN_BYTES)).toBe(REF_NONE)
})

test('a link to itself, forward, or a loop through fake bytes ends the walk instead of hanging', () => {
  expect(resolveVisible(logWith([[30, 30]]), 30, LSN_ALIGN_BYTES)).toBe(REF_NONE)
  expect(resolveVisible(logWith([[30, 31]]), 30, LSN_ALIGN_BYTES)).toBe(REF_NONE)
  // 40 -> 25 (inside another op's value, where hostile bytes say 40) -> 40 -> ...
  expect(resolveVisible(logWith([[40, 25], [25, 40]]), 40, LSN_ALIGN_BYTES)).toBe(REF_NONE)
})
