/**
 * Starts a primary: opens (recovers) its log, serves RESP, and flushes and
 * closes cleanly on SIGINT/SIGTERM.
 */
import os from 'node:os'
import { isRemoteMode, Primary, type CommitMode } from '../primary/primary.js'
import { CommandRegistry, InfoRegistry } from '../server/registry.js'
import { RespServer } from '../server/server.js'
import { SHARED_COMMANDS } from '../server/tables.js'
import { Shipping } from '../ship/sender.js'

export interface PrimaryRunOptions {
  host: string
  port: number
  dir: string
  commit: CommitMode
  syncBackups: number
  requirepass: string | null
  segmentBytes: number
  maxMemoryBytes: number
  retainBytes: number
  initialLsn: number
  maxClients: number
  valueBytesMax: number
  /** --accept-log-damage: cut the log at the first damage instead of refusing to start. */
  acceptLogDamage: boolean
  log: (line: string) => void
}

export interface RunningPrimary {
  primary: Primary
  shipping: Shipping
  server: RespServer
  stop: () => Promise<void>
}

export async function startPrimary(o: PrimaryRunOptions): Promise<RunningPrimary> {
  // The composition root: the primary, shipping and the server are built in that order, and each
  // one's hooks reach the ones built after it through these bindings (set before any hook can run:
  // nothing is written, sealed or acknowledged until the server listens).
  let shipping: Shipping | null = null
  let server: RespServer | null = null
  const primary = await Primary.open({
    dir: o.dir, segmentBytes: o.segmentBytes, commit: o.commit, maxMemoryBytes: o.maxMemoryBytes,
    valueBytesMax: o.valueBytesMax, recoveryWorkers: Math.min(4, os.cpus().length), acceptLogDamage: o.acceptLogDamage,
    retainBytes: o.retainBytes, initialLsn: o.initialLsn, log: o.log,
  }, {
    released: () => server?.releaseHeld(),
    sealed: () => shipping?.pump(),
    safe: () => shipping?.sendSafe(),
    remoteReleased: isRemoteMode(o.commit) ? () => shipping!.remoteReleased() : null,
    cleaned: (holes) => shipping?.cleaned(holes),
    retainFloor: () => shipping === null ? Number.MAX_SAFE_INTEGER : shipping.retainFloor(),
    shippedFloor: () => shipping === null ? Number.MAX_SAFE_INTEGER : shipping.shippedFloor(),
  })
  const r = primary.recovery
  const mb = r.bytesRead / 1e6
  o.log(`recovered ${r.blockCount} blocks (${mb.toFixed(1)} MB, ${r.opsInstalled} ops) in ${(r.readMs + r.replayMs).toFixed(0)} ms: read+verify ${r.readMs.toFixed(0)} ms, index ${r.replayMs.toFixed(0)} ms`)
  const ship = new Shipping(primary, o.syncBackups, { released: () => server?.releaseHeld() })
  shipping = ship
  const commands = new CommandRegistry(...SHARED_COMMANDS, ship.commands(), primary.commands())
  const info = new InfoRegistry(primary.infoSections(), ship.infoSections())
  const resp = new RespServer(primary, {
    host: o.host, port: o.port, requirepass: o.requirepass, maxClients: o.maxClients,
    valueBytesMax: o.valueBytesMax, log: o.log,
    shutdown: () => { stop().then(() => process.exit(0), (err) => { o.log(`shutdown failed: ${String(err)}`); process.exit(1) }) },
  }, commands, info)
  server = resp
  await resp.listen()
  o.log(`primary listening on ${o.host}:${resp.port} (dir ${o.dir}, commit ${o.commit}, epoch ${primary.epoch}, commit_lsn ${primary.commitLsn()})`)
  let stopping: Promise<void> | null = null
  const stop = (): Promise<void> => {
    if (stopping === null) stopping = (async () => {
      // Seal and flush the log before closing connections: replies of writes made durable still go out.
      resp.quiesce()
      await primary.close()
      await resp.close()
      ship.close()
    })()
    return stopping
  }
  return { primary, shipping: ship, server: resp, stop }
}

