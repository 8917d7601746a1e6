/**
 * The backup's divergence search (DivergenceProbe) against a model: logs that
 * agree up to some block and differ after it. For every split point it finds
 * the last common block end in at most 1 + ceil(log2(n)) checks, and refuses
 * when the logs differ at the confirmed position itself.
 */
import { expect, test } from 'vitest'
import { DivergenceProbe } from '../../src/backup/divergence.js'

function run(ends: number[], agreeThrough: number): { outcome: { type: string, lsn: number }, checks: number } {
  const probe = new DivergenceProbe(ends, ends.map((e) => e * 7))
  for (let checks = 1; checks <= 64; checks++) {
    const ask = probe.next()
    expect(ask).not.toBeNull()
    expect(ask!.checksum).toBe(ask!.lsn * 7)
    const outcome = probe.answer(ask!.lsn <= agreeThrough)
    if (outcome !== null) return { outcome, checks }
  }
  throw new Error('the search did not finish')
}

test('finds the last common block end for every split point, in logarithmic checks', () => {
  for (const n of [1, 2, 3, 7, 64, 1000]) {
    const ends = Array.from({ length: n + 1 }, (_, i) => 1000 + i * 96)
    // The log end (last entry) is what the primary refused: agreement ends before it.
    for (let k = 0; k < n; k++) {
      const { outcome, checks } = run(ends, ends[k])
      expect(outcome).toEqual({ type: 'cut', lsn: ends[k] })
      expect(checks).toBeLessThanOrEqual(1 + Math.ceil(Math.log2(n + 1)))
    }
  }
})

test('refuses when the logs differ at the confirmed position', () => {
  const ends = [5000, 5096, 5192]
  expect(run(ends, 4000).outcome).toEqual({ type: 'refuse', lsn: 5000 })
  expect(run([5000], 4000).outcome).toEqual({ type: 'refuse', lsn: 5000 })
})
