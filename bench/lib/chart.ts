/**
 * Line charts as PNG files for bench results: an RGBA raster, straight lines
 * (solid, dashed or dotted), a 5x7 bitmap font, and one chart layout (title,
 * x and y axes with "nice" ticks and labels, vertical markers, a legend).
 * PNG encoding is pngjs (pure JS, no native build). Not a general plotting
 * library: it draws what the benches need and nothing else.
 */
import fs from 'node:fs'
import { PNG } from 'pngjs'
import { DESCENDER_ROWS, DESCENDERS, GLYPH_HEIGHT, GLYPH_WIDTH, glyphRows } from './font5x7.js'

export type Rgb = readonly [number, number, number]
export type LineStyle = 'solid' | 'dashed' | 'dotted'

export interface Series {
  name: string
  color: Rgb
  style: LineStyle
  /** Line width in pixels. */
  width: number
  points: ReadonlyArray<readonly [number, number]>
}

export interface Marker {
  x: number
  label: string
}

/** One plot area: its own y axis and legend; every panel of a chart shares the x axis. */
export interface Panel {
  yLabel: string
  series: Series[]
}

export interface LineChart {
  title: string
  /** A second, smaller-print line under the title ('' for none). */
  subtitle: string
  xLabel: string
  panels: Panel[]
  markers: Marker[]
  widthPx: number
  panelHeightPx: number
}

const WHITE: Rgb = [255, 255, 255]
const BLACK: Rgb = [0, 0, 0]
const GRID: Rgb = [225, 225, 225]
const MARKER: Rgb = [150, 150, 150]
const TEXT_SCALE = 2
const CHAR_ADVANCE_PX = (GLYPH_WIDTH + 1) * TEXT_SCALE
const TEXT_HEIGHT_PX = GLYPH_HEIGHT * TEXT_SCALE
const DASH_ON_PX = 10
const DASH_OFF_PX = 6
const DOT_ON_PX = 3
const DOT_OFF_PX = 4
const LEGEND_SWATCH_PX = 36

class Raster {
  readonly png: PNG

  constructor(readonly widthPx: number, readonly heightPx: number) {
    this.png = new PNG({ width: widthPx, height: heightPx })
    this.fillRect(0, 0, widthPx, heightPx, WHITE)
  }

  setPixel(x: number, y: number, c: Rgb): void {
    const xi = Math.round(x)
    const yi = Math.round(y)
    if (xi < 0 || yi < 0 || xi >= this.widthPx || yi >= this.heightPx) return
    const at = (yi * this.widthPx + xi) * 4
    const d = this.png.data
    d[at] = c[0]
    d[at + 1] = c[1]
    d[at + 2] = c[2]
    d[at + 3] = 255
  }

  fillRect(x: number, y: number, w: number, h: number, c: Rgb): void {
    for (let j = Math.round(y); j < Math.round(y + h); j++) {
      for (let i = Math.round(x); i < Math.round(x + w); i++) this.setPixel(i, j, c)
    }
  }

  /**
   * A line of `width` pixels from (x0, y0) to (x1, y1). `phasePx` carries the
   * dash pattern from one segment of a polyline to the next; returns it.
   */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, width: number, style: LineStyle, phasePx = 0): number {
    const len = Math.hypot(x1 - x0, y1 - y0)
    const steps = Math.max(1, Math.ceil(len * 2))
    const on = style === 'dashed' ? DASH_ON_PX : DOT_ON_PX
    const period = style === 'dashed' ? DASH_ON_PX + DASH_OFF_PX : DOT_ON_PX + DOT_OFF_PX
    const half = (width - 1) / 2
    for (let s = 0; s <= steps; s++) {
      const t = s / steps
      if (style !== 'solid' && (phasePx + t * len) % period >= on) continue
      const x = x0 + (x1 - x0) * t
      const y = y0 + (y1 - y0) * t
      for (let dy = -half; dy <= half; dy++) {
        for (let dx = -half; dx <= half; dx++) this.setPixel(x + dx, y + dy, c)
      }
    }
    return phasePx + len
  }

  /** Text with its top-left corner at (x, y); `vertical` turns it 90 degrees counter-clockwise (reads bottom to top from (x, y)). */
  text(x: number, y: number, s: string, c: Rgb, vertical = false): void {
    for (let k = 0; k < s.length; k++) {
      const rows = glyphRows(s[k])
      const drop = DESCENDERS.has(s[k]) ? DESCENDER_ROWS : 0
      for (let r = 0; r < GLYPH_HEIGHT; r++) {
        for (let col = 0; col < GLYPH_WIDTH; col++) {
          if (rows[r][col] !== '#') continue
          for (let sy = 0; sy < TEXT_SCALE; sy++) {
            for (let sx = 0; sx < TEXT_SCALE; sx++) {
              const gx = k * CHAR_ADVANCE_PX + col * TEXT_SCALE + sx
              const gy = (r + drop) * TEXT_SCALE + sy
              if (vertical) this.setPixel(x + gy, y - gx, c)
              else this.setPixel(x + gx, y + gy, c)
            }
          }
        }
      }
    }
  }
}

export function textWidthPx(s: string): number {
  return s.length * CHAR_ADVANCE_PX
}

/** Ticks at 1, 2 or 5 times a power of ten, about `count` of them, covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count: number): number[] {
  if (!(hi > lo)) hi = lo + 1
  const raw = (hi - lo) / count
  const pow = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow
  const ticks: number[] = []
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)))
  if (ticks[ticks.length - 1] < hi) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)))
  return ticks
}

function tickLabel(v: number): string {
  if (Number.isInteger(v)) return String(v)
  return String(Number(v.toPrecision(3)))
}

const LEFT_PX = 110
const TITLE_TOP_PX = 16
const HEADER_PX = 80
const PANEL_GAP_PX = 30
const X_AXIS_PX = 70
const MARKER_LABEL_ROWS = 3

/** Draws the chart (panels stacked, one x axis at the bottom) and returns the PNG bytes. */
export function renderLineChart(chart: LineChart): Buffer {
  const allSeries = chart.panels.flatMap((p) => p.series)
  const legendWidthPx = LEGEND_SWATCH_PX + 12 + Math.max(...allSeries.map((s) => textWidthPx(s.name)), 0) + 30
  const heightPx = HEADER_PX + chart.panels.length * chart.panelHeightPx + (chart.panels.length - 1) * PANEL_GAP_PX + X_AXIS_PX
  const r = new Raster(chart.widthPx, heightPx)
  const left = LEFT_PX
  const right = chart.widthPx - legendWidthPx
  const xs = allSeries.flatMap((s) => s.points.map((p) => p[0]))
  const xTicks = niceTicks(0, xs.length > 0 ? Math.max(...xs) : 1, 10)
  const xMax = xTicks[xTicks.length - 1]
  const px = (x: number): number => left + (x / xMax) * (right - left)

  r.text(left, TITLE_TOP_PX, chart.title, BLACK)
  if (chart.subtitle !== '') r.text(left, TITLE_TOP_PX + TEXT_HEIGHT_PX + 10, chart.subtitle, MARKER)
  let bottom = 0
  for (let pi = 0; pi < chart.panels.length; pi++) {
    const panel = chart.panels[pi]
    const top = HEADER_PX + pi * (chart.panelHeightPx + PANEL_GAP_PX)
    bottom = top + chart.panelHeightPx
    const ys = panel.series.flatMap((s) => s.points.map((p) => p[1]))
    const yTicks = niceTicks(0, ys.length > 0 ? Math.max(...ys) : 1, 6)
    const yMax = yTicks[yTicks.length - 1]
    const py = (y: number): number => bottom - (y / yMax) * (bottom - top)
    for (const t of yTicks) {
      r.line(left, py(t), right, py(t), GRID, 1, 'solid')
      const label = tickLabel(t)
      r.text(left - 10 - textWidthPx(label), py(t) - TEXT_HEIGHT_PX / 2, label, BLACK)
    }
    for (const t of xTicks) r.line(px(t), top, px(t), bottom, GRID, 1, 'solid')
    for (let mi = 0; mi < chart.markers.length; mi++) {
      const m = chart.markers[mi]
      r.line(px(m.x), top, px(m.x), bottom, MARKER, 1, 'dashed')
      if (pi === 0) r.text(px(m.x) + 4, top + 4 + (mi % MARKER_LABEL_ROWS) * (TEXT_HEIGHT_PX + 6), m.label, MARKER)
    }
    r.line(left, top, left, bottom, BLACK, 2, 'solid')
    r.line(left, bottom, right, bottom, BLACK, 2, 'solid')
    r.text(20, (top + bottom) / 2 + textWidthPx(panel.yLabel) / 2, panel.yLabel, BLACK, true)
    for (const s of panel.series) {
      let phase = 0
      for (let i = 1; i < s.points.length; i++) {
        const [xa, ya] = s.points[i - 1]
        const [xb, yb] = s.points[i]
        phase = r.line(px(xa), py(ya), px(xb), py(yb), s.color, s.width, s.style, phase)
      }
      if (s.points.length === 1) r.fillRect(px(s.points[0][0]) - 2, py(s.points[0][1]) - 2, 5, 5, s.color)
    }
    const lx = right + 24
    let ly = top
    for (const s of panel.series) {
      r.line(lx, ly + TEXT_HEIGHT_PX / 2, lx + LEGEND_SWATCH_PX, ly + TEXT_HEIGHT_PX / 2, s.color, s.width, s.style)
      r.text(lx + LEGEND_SWATCH_PX + 12, ly, s.name, BLACK)
      ly += TEXT_HEIGHT_PX + 12
    }
  }
  for (const t of xTicks) {
    const label = tickLabel(t)
    r.text(px(t) - textWidthPx(label) / 2, bottom + 10, label, BLACK)
  }
  r.text((left + right) / 2 - textWidthPx(chart.xLabel) / 2, bottom + 40, chart.xLabel, BLACK)
  return PNG.sync.write(r.png)
}

export function writeLineChart(file: string, chart: LineChart): void {
  fs.writeFileSync(file, renderLineChart(chart))
}
