/**
 * Question (issue 16): what does scraping /metrics every second cost a node's
 * throughput? Target: under 1 %.
 *
 * One freshet primary (`--commit async --metrics-port 0`), driven by the real
 * redis-benchmark (SET, -P 16, 50 clients, 64-byte values over 1M keys).
 * After a warm-up run, runs alternate on the same server (in both orders): without a scraper, and with one that
 * GETs /metrics every SCRAPE_INTERVAL_MS, so machine noise hits both alike.
 * Figures: requests/s of each (median), their ratio, the server's CPU per
 * request (from /proc: what time spent descheduled on a shared machine does
 * not distort), and the scrape's own time (median, max) and size.
 * Skipped, with a message, where redis-benchmark is missing.
 */
import { figure, makeTempDir, param, processCpuMs, removeDir, showFigure, type BenchContext, type BenchReport } from './lib/common.js'
import { CLI_ARGV, runToEnd, startUntilReady, stop, which } from './lib/proc.js'
import { parseQuiet } from './redis_benchmark.js'

const SCRAPE_INTERVAL_MS = 1000
const READY_TIMEOUT_MS = 60_000
const BENCH_TIMEOUT_MS = 600_000

export async function run(ctx: BenchContext): Promise<BenchReport> {
  const redisBenchmark = which('redis-benchmark')
  if (redisBenchmark === null) return { name: 'metrics', skipped: 'redis-benchmark not found on PATH (apt-get install -y redis-tools)', figures: {}, hash: '' }
  const requests = param(ctx.mode, 300_000, 6_000_000)
  const reps = param(ctx.mode, 2, 5)
  const dir = makeTempDir('metrics-bench')
  const started = await startUntilReady(process.execPath, [...CLI_ARGV, 'primary', '--port', '0', '--dir', dir, '--commit', 'async', '--metrics-port', '0'],
    /primary listening on [^\s:]+:(\d+)/, READY_TIMEOUT_MS)
  // Printed before the node listens.
  const metricsPort = Number(started.lines.map((l) => /metrics on http:\/\/[^:]+:(\d+)\/metrics/.exec(l)).find((m) => m !== null)![1])
  const port = Number(started.match[1])
  const pid = started.child.pid!
  const rps: Record<'off' | 'on', number[]> = { off: [], on: [] }
  const cpuUsPerRequest: Record<'off' | 'on', number[]> = { off: [], on: [] }
  const scrapeMs: number[] = []
  let scrapeBytes = 0
  try {
    // A first run warms the server up (JIT, the index's growth) and is not counted.
    await runToEnd(redisBenchmark, ['-p', String(port), '-t', 'set', '-n', String(requests), '-r', '1000000', '-d', '64', '-P', '16', '-c', '50', '-q'], BENCH_TIMEOUT_MS)
    for (let rep = 0; rep < reps; rep++) {
      for (const scraping of rep % 2 === 0 ? ['off', 'on'] as const : ['on', 'off'] as const) {
        let scraper: NodeJS.Timeout | null = null
        if (scraping === 'on') {
          const scrapeOnce = (): void => {
            const t = performance.now()
            fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text()).then((text) => { scrapeMs.push(performance.now() - t); scrapeBytes = text.length }, () => {})
          }
          scrapeOnce()
          scraper = setInterval(scrapeOnce, SCRAPE_INTERVAL_MS)
        }
        const cpu0 = processCpuMs(pid)
        const r = await runToEnd(redisBenchmark, ['-p', String(port), '-t', 'set', '-n', String(requests), '-r', '1000000', '-d', '64', '-P', '16', '-c', '50', '-q'], BENCH_TIMEOUT_MS)
        const cpuMs = processCpuMs(pid) - cpu0
        if (scraper !== null) clearInterval(scraper)
        const m = parseQuiet(r.stdout).get('SET')
        if (m === undefined) throw new Error(`redis-benchmark: ${r.stdout.slice(-300)} ${r.stderr.slice(-300)}`)
        rps[scraping].push(m.rps)
        cpuUsPerRequest[scraping].push(cpuMs * 1000 / requests)
      }
    }
  } finally {
    await stop(started.child)
    removeDir(dir)
  }
  const off = figure(rps.off, 'req/s')
  const on = figure(rps.on, 'req/s')
  const cpuOff = figure(cpuUsPerRequest.off, 'us')
  const cpuOn = figure(cpuUsPerRequest.on, 'us')
  const scrape = figure(scrapeMs.length > 0 ? scrapeMs : [NaN], 'ms')
  ctx.log(`metrics: SET -P16 without scraping ${showFigure(off, 0)}, scraped every ${SCRAPE_INTERVAL_MS} ms ${showFigure(on, 0)}: ratio ${(on.median / off.median).toFixed(3)} (target >= 0.99)`)
  ctx.log(`metrics: server CPU per request ${showFigure(cpuOff, 3)} vs ${showFigure(cpuOn, 3)}; a scrape ${showFigure(scrape, 2)} over ${scrapeMs.length} scrapes, ${scrapeBytes} bytes`)
  return {
    name: 'metrics', skipped: null,
    figures: { rps_off: off, rps_on: on, ratio: on.median / off.median, cpu_us_per_request_off: cpuOff, cpu_us_per_request_on: cpuOn, scrape_ms: scrape, scrape_bytes: scrapeBytes },
    hash: `${reps}x${requests}`,
  }
}
