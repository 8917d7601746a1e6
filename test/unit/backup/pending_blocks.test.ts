/**
 * The pending-block ring starts small and grows (in LSN order) while a backup
 * falls behind: every operation agrees with a plain array model across growth
 * and wrap-around, and the capacity never passes PENDING_BLOCKS_MAX.
 */
import { expect, test } from 'vitest'
import fc from 'fast-check'
import { PENDING_BLOCKS_INITIAL, PENDING_BLOCKS_MAX, PendingBlocks } from '../../../src/backup/pending_blocks.js'

interface Entry { end: number, commitMs: number, keys: number }

function contents(p: PendingBlocks): Entry[] {
  const out: Entry[] = []
  for (let i = 0; i < p.count; i++) {
    const j = p.at(i)
    out.push({ end: p.end[j], commitMs: p.commitMs[j], keys: p.keys[j] })
  }
  return out
}

test('the ring grows in order through wrap-around and agrees with an array model', () => {
  fc.assert(fc.property(
    fc.array(fc.oneof(
      fc.record({ kind: fc.constant('push' as const), n: fc.integer({ min: 1, max: 3 * PENDING_BLOCKS_INITIAL }) }),
      fc.record({ kind: fc.constant('pop' as const), n: fc.integer({ min: 0, max: 2 * PENDING_BLOCKS_INITIAL }) }),
      fc.record({ kind: fc.constant('drop' as const), n: fc.integer({ min: 0, max: 64 }) }),
    ), { maxLength: 40 }),
    (ops) => {
      const p = new PendingBlocks()
      const model: Entry[] = []
      let lsn = 0
      for (const op of ops) {
        if (op.kind === 'push') {
          for (let i = 0; i < op.n; i++) {
            lsn += 72 + (i % 5) * 8
            const e = { end: lsn, commitMs: lsn / 8, keys: i }
            p.push(e.end, e.commitMs, e.keys)
            model.push(e)
          }
        } else if (op.kind === 'pop') {
          // Blocks up to the n-th pending one become visible.
          const through = model.length === 0 ? 0 : model[Math.min(op.n, model.length - 1)].end
          const newest = p.popThrough(through)
          const gone = model.filter((e) => e.end <= through)
          model.splice(0, gone.length)
          if (gone.length === 0) expect(newest).toBe(-1)
          else expect(p.end[newest]).toBe(gone[gone.length - 1].end)
        } else {
          const keep = Math.max(0, model.length - op.n)
          const cut = keep === 0 ? 0 : model[keep - 1].end
          p.dropAbove(cut)
          model.length = keep
          lsn = Math.max(cut, model.length === 0 ? lsn : model[model.length - 1].end)
        }
        expect(p.count).toBe(model.length)
        expect(contents(p)).toEqual(model)
        expect(p.capacity()).toBeLessThanOrEqual(PENDING_BLOCKS_MAX)
        expect(p.capacity()).toBeGreaterThanOrEqual(Math.max(PENDING_BLOCKS_INITIAL, model.length))
        if (model.length > 0) {
          const probe = model[Math.floor(model.length / 2)].end
          expect(p.endAtOrBelow(probe)).toBe(probe)
          expect(p.endAtOrBelow(probe - 1)).toBe(model.filter((e) => e.end <= probe - 1).at(-1)?.end ?? -1)
        }
      }
    },
  ), { seed: 7, numRuns: 60 })
})

test('an idle backup holds the initial ring only', () => {
  const p = new PendingBlocks()
  for (let i = 1; i <= 100_000; i++) {
    p.push(i * 100, i, i)
    p.popThrough(i * 100)
  }
  expect(p.count).toBe(0)
  expect(p.capacity()).toBe(PENDING_BLOCKS_INITIAL)
})

test('a ring that has wrapped grows with its oldest block first', () => {
  const p = new PendingBlocks()
  let lsn = 0
  for (let i = 0; i < PENDING_BLOCKS_INITIAL - 10; i++) p.push(lsn += 80, lsn, i)
  p.popThrough(100 * 80)
  expect(p.head).toBe(100)
  for (let i = 0; i < 200; i++) p.push(lsn += 80, lsn, i)
  expect(p.capacity()).toBe(2 * PENDING_BLOCKS_INITIAL)
  expect(p.count).toBe(PENDING_BLOCKS_INITIAL - 10 - 100 + 200)
  for (let i = 0; i < p.count; i++) expect(p.end[p.at(i)]).toBe((101 + i) * 80)
})
