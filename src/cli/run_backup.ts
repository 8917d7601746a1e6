/**
 * Starts a backup: recovers its own log, connects to the primary, replays on
 * the worker pool, serves read-only RESP. SIGINT/SIGTERM close cleanly.
 */
import { Backup } from '../backup/backup.js'
import { CommandRegistry, InfoRegistry } from '../server/registry.js'
import { RespServer } from '../server/server.js'
import { SHARED_COMMANDS } from '../server/tables.js'

export interface BackupRunOptions {
  host: string
  port: number
  dir: string
  primaryHost: string
  primaryPort: number
  primaryAuth: string | null
  requirepass: string | null
  workers: number
  segmentBytes: number
  maxMemoryBytes: number
  maxClients: number
  valueBytesMax: number
  /** --accept-log-damage: cut the log at the first damage instead of refusing to start. */
  acceptLogDamage: boolean
  log: (line: string) => void
}

export interface RunningBackup {
  backup: Backup
  server: RespServer
  stop: () => Promise<void>
}

export async function startBackup(o: BackupRunOptions): Promise<RunningBackup> {
  const backup = await Backup.open({
    dir: o.dir, segmentBytes: o.segmentBytes, primaryHost: o.primaryHost, primaryPort: o.primaryPort,
    primaryAuth: o.primaryAuth, workers: o.workers, listenPort: o.port, acceptLogDamage: o.acceptLogDamage,
    maxMemoryBytes: o.maxMemoryBytes, log: o.log,
  })
  const r = backup.recovery
  o.log(`recovered ${r.blockCount} blocks (${(r.bytesRead / 1e6).toFixed(1)} MB, ${r.opsInstalled} ops) in ${(r.readMs + r.replayMs).toFixed(0)} ms`)
  // The composition root: the backup's commands and INFO sections join the shared ones.
  const server = new RespServer(backup, {
    host: o.host, port: o.port, requirepass: o.requirepass, maxClients: o.maxClients,
    valueBytesMax: o.valueBytesMax, log: o.log,
    shutdown: () => { stop().then(() => process.exit(0), (err) => { o.log(`shutdown failed: ${String(err)}`); process.exit(1) }) },
  }, new CommandRegistry(...SHARED_COMMANDS, backup.commands()), new InfoRegistry(backup.infoSections()))
  await server.listen()
  backup.start(server.port)
  o.log(`backup listening on ${o.host}:${server.port} (dir ${o.dir}, primary ${o.primaryHost}:${o.primaryPort}, workers ${o.workers})`)
  let stopping: Promise<void> | null = null
  const stop = (): Promise<void> => {
    if (stopping === null) stopping = (async () => {
      await server.close()
      await backup.close()
    })()
    return stopping
  }
  return { backup, server, stop }
}
