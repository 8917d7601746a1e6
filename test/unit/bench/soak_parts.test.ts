/**
 * The soak bench's pure parts: the seeded key chooser (uniform and Zipf-0.99)
 * and the PNG line chart (pngjs round trip, ticks, the bitmap font).
 */
import { describe, expect, test } from 'vitest'
import { PNG } from 'pngjs'
import { KeyChooser, soakKey } from '../../../bench/lib/soak_load.js'
import { niceTicks, renderLineChart } from '../../../bench/lib/chart.js'
import { GLYPH_HEIGHT, GLYPH_WIDTH, glyphRows } from '../../../bench/lib/font5x7.js'

const KEYS = 10_000
const DRAWS = 200_000

function counts(chooser: KeyChooser): number[] {
  const c = new Array<number>(KEYS).fill(0)
  let outside = 0
  for (let i = 0; i < DRAWS; i++) {
    const k = chooser.next()
    if (!(Number.isInteger(k) && k >= 0 && k < KEYS)) outside++
    else c[k]++
  }
  expect(outside).toBe(0)
  return c
}

describe('KeyChooser', () => {
  test('the same seed gives the same keys', () => {
    const a = new KeyChooser(KEYS, 'zipf', 7)
    const b = new KeyChooser(KEYS, 'zipf', 7)
    for (let i = 0; i < 1000; i++) expect(a.next()).toBe(b.next())
  })

  test('uniform: every key drawn, none far above its share', () => {
    const c = counts(new KeyChooser(KEYS, 'uniform', 1))
    const share = DRAWS / KEYS
    expect(c.every((n) => n > 0)).toBe(true)
    expect(Math.max(...c)).toBeLessThan(share * 3)
  })

  test('zipf 0.99: rank 0 is hottest, and the hottest 1 % of keys take a large share', () => {
    const c = counts(new KeyChooser(KEYS, 'zipf', 2))
    expect(c[0]).toBe(Math.max(...c))
    // zeta(10^4, 0.99) is about 9.6, so rank 0 has about 1/9.6 of the draws
    expect(c[0] / DRAWS).toBeGreaterThan(0.07)
    expect(c[0] / DRAWS).toBeLessThan(0.14)
    const hot = c.slice(0, KEYS / 100).reduce((a, b) => a + b, 0)
    expect(hot / DRAWS).toBeGreaterThan(0.45)
    expect(c[1]).toBeGreaterThan(c[100])
  })

  test('key names are fixed width', () => {
    expect(soakKey(0)).toBe('soak:00000000')
    expect(soakKey(99_999).length).toBe(soakKey(0).length)
  })
})

describe('chart', () => {
  test('niceTicks covers the range with 1/2/5 steps', () => {
    expect(niceTicks(0, 18.8, 10)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20])
    const t = niceTicks(0, 137, 6)
    expect(t[0]).toBe(0)
    expect(t[t.length - 1]).toBeGreaterThanOrEqual(137)
  })

  test('every glyph is 5x7; unknown characters draw as ?', () => {
    for (const ch of 'abcdefghijklmnopqrstuvwxyzMB0123456789 .,:;-_+=()/%^?') {
      const rows = glyphRows(ch)
      expect(rows.length).toBe(GLYPH_HEIGHT)
      for (const r of rows) expect(r.length).toBe(GLYPH_WIDTH)
    }
    expect(glyphRows('~')).toEqual(glyphRows('?'))
  })

  test('renders a PNG that decodes to the asked size, with the series colour in it', () => {
    const png = renderLineChart({
      title: 'test chart', subtitle: 'sub', xLabel: 'seconds', widthPx: 800, panelHeightPx: 300,
      markers: [{ x: 1, label: 'phase' }],
      panels: [
        { yLabel: 'MB', series: [{ name: 'a', color: [200, 10, 10], style: 'solid', width: 3, points: [[0, 1], [2, 5], [4, 3]] }] },
        { yLabel: 'RSS', series: [{ name: 'b', color: [10, 10, 200], style: 'dashed', width: 2, points: [[0, 10], [4, 20]] }] },
      ],
    })
    const decoded = PNG.sync.read(png)
    expect(decoded.width).toBe(800)
    let red = 0
    let blue = 0
    for (let i = 0; i < decoded.data.length; i += 4) {
      const [r, g, b] = [decoded.data[i], decoded.data[i + 1], decoded.data[i + 2]]
      if (r === 200 && g === 10 && b === 10) red++
      if (r === 10 && g === 10 && b === 200) blue++
    }
    expect(red).toBeGreaterThan(100)
    expect(blue).toBeGreaterThan(50)
  })
})
