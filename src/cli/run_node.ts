/**
 * A node of either role, and the role changes between them at run time
 * (the composition root of both roles). One RESP server serves the node
 * throughout: its port, its connections and their sessions stay; a role
 * change builds the other role's object over the same log directory and
 * calls `server.serve()` with that role's commands and INFO sections.
 *
 *   backup -> primary  (REPLICAOF NO ONE, FRESHET.PROMOTE): Backup.promote()
 *     drains the link, makes everything it holds durable and visible, writes
 *     a new epoch into the history; Primary.adopt() takes its log, index and
 *     files as they are (nothing is re-read), and shipping starts.
 *   primary -> backup  (REPLICAOF host port): the primary is fenced at once
 *     (nothing more is acknowledged; held replies get -READONLY), its log is
 *     flushed and closed, the position clients may have seen is recorded as
 *     confirmed, and the directory is opened as a backup that follows
 *     host:port; the handshake finds where the logs part (epoch histories).
 *   backup -> backup   (REPLICAOF host port): the link is repointed.
 *
 * A backup whose log a failover took back below what it had shown (a CUT
 * below its confirmed LSN) cuts it and is reopened here (Backup `reopen`).
 */
import type http from 'node:http'
import { serveMetrics } from '../metrics/metrics.js'
import os from 'node:os'
import path from 'node:path'
import { Backup, type BackupOptions } from '../backup/backup.js'
import { writeConfirmedLsn } from '../backup/confirmed.js'
import { dbError, DbError } from '../errors.js'
import { isRemoteMode, Primary, type CommitMode, type PrimaryHooks, type PrimaryOptions } from '../primary/primary.js'
import { argString } from '../server/args.js'
import { F_ADMIN, F_BLOCKING, type CommandSpec, type Session } from '../server/commands.js'
import { CommandRegistry, InfoRegistry } from '../server/registry.js'
import { RespServer } from '../server/server.js'
import { SHARED_COMMANDS } from '../server/tables.js'
import { Shipping } from '../ship/sender.js'
import type { InfoSections } from '../node.js'
import { RdbSaves, SAVE_STEP_MS_DEFAULT } from '../rdb/saves.js'
import { REDIS_VERSION } from '../server/admin_commands.js'

export interface NodeRunOptions {
  host: string
  port: number
  dir: string
  requirepass: string | null
  segmentBytes: number
  maxMemoryBytes: number
  maxClients: number
  valueBytesMax: number
  /** --accept-log-damage: cut the log at the first damage instead of refusing to start. */
  acceptLogDamage: boolean
  /** As a primary (started so, or once promoted). */
  commit: CommitMode
  syncBackups: number
  syncTimeoutMs: number
  retainBytes: number
  initialLsn: number
  /** As a backup. */
  workers: number
  primaryAuth: string | null
  /** RDB snapshots (SAVE, BGSAVE, SYNC) go to <dir>/<dbfilename>. */
  dbfilename: string
  /** --metrics-port: serve /metrics (Prometheus) on host:port; null: off. */
  metricsPort: number | null
  log: (line: string) => void
}

type Role =
  | { kind: 'primary', primary: Primary, shipping: Shipping }
  | { kind: 'backup', backup: Backup }

/** Times of the last role change, ms (INFO replication, `freshet failover`). */
interface RoleChange {
  what: string
  ms: number
}

export class RunningNode {
  readonly options: NodeRunOptions
  role: Role
  server: RespServer
  /** A role change in progress: a second one is refused until it is done. */
  private changing: boolean
  private lastChange: RoleChange | null
  private visibleCutsTotal: number
  private stopping: Promise<void> | null
  /** SAVE, BGSAVE, LASTSAVE, SYNC of whichever role is served (rdb/saves.ts). */
  readonly saves: RdbSaves

  /** The /metrics endpoint (--metrics-port), or null. */
  metrics: http.Server | null

  private constructor(options: NodeRunOptions, role: Role, server: RespServer) {
    this.options = options
    this.role = role
    this.server = server
    this.changing = false
    this.lastChange = null
    this.visibleCutsTotal = 0
    this.stopping = null
    this.metrics = null
    this.saves = new RdbSaves({ dir: options.dir, dbfilename: options.dbfilename, redisVersion: REDIS_VERSION, stepMs: SAVE_STEP_MS_DEFAULT, log: options.log },
      () => this.role.kind === 'primary' ? this.role.primary : this.role.backup)
  }

  /** Starts a node: a primary (`follow` null) or a backup of `follow`. */
  static async start(o: NodeRunOptions, follow: { host: string, port: number } | null): Promise<RunningNode> {
    // The server is built after the first role's object; hooks reach it through `node` (set before any can run:
    // nothing is written, sealed or acknowledged until the server listens).
    let node: RunningNode | null = null
    const shippingOf = (): Shipping | null => node !== null && node.role.kind === 'primary' ? node.role.shipping : null
    let role: Role
    if (follow === null) {
      const primary = await Primary.open(primaryOptions(o), primaryHooks(o, () => node?.server ?? null, shippingOf))
      const r = primary.recovery
      o.log(`recovered ${r.blockCount} blocks (${(r.bytesRead / 1e6).toFixed(1)} MB, ${r.opsInstalled} ops) in ${(r.readMs + r.replayMs).toFixed(0)} ms: read+verify ${r.readMs.toFixed(0)} ms, index ${r.replayMs.toFixed(0)} ms`)
      role = { kind: 'primary', primary, shipping: new Shipping(primary, o.syncBackups, { released: () => node?.server.releaseHeld() }) }
    } else {
      const backup = await Backup.open(backupOptions(o, follow.host, follow.port, (why) => node?.reopenBackup(why)))
      const r = backup.recovery
      o.log(`recovered ${r.blockCount} blocks (${(r.bytesRead / 1e6).toFixed(1)} MB, ${r.opsInstalled} ops) in ${(r.readMs + r.replayMs).toFixed(0)} ms`)
      role = { kind: 'backup', backup }
    }
    const first = role.kind === 'primary' ? role.primary : role.backup
    const server = new RespServer(first, {
      host: o.host, port: o.port, requirepass: o.requirepass, maxClients: o.maxClients, valueBytesMax: o.valueBytesMax, log: o.log,
      dir: path.resolve(o.dir), dbfilename: o.dbfilename,
      shutdown: () => { node!.stop().then(() => process.exit(0), (err) => { o.log(`shutdown failed: ${String(err)}`); process.exit(1) }) },
    }, new CommandRegistry(), new InfoRegistry())
    node = new RunningNode(o, role, server)
    node.serveRole()
    await server.listen()
    if (o.metricsPort !== null) node.metrics = await serveMetrics(server, o.host, o.metricsPort, o.log)
    if (role.kind === 'primary') {
      o.log(`primary listening on ${o.host}:${server.port} (dir ${o.dir}, commit ${o.commit}, epoch ${role.primary.epoch}, commit_lsn ${role.primary.commitLsn()})`)
    } else {
      role.backup.start(server.port)
      o.log(`backup listening on ${o.host}:${server.port} (dir ${o.dir}, primary ${follow!.host}:${follow!.port}, workers ${o.workers})`)
    }
    return node
  }

  /** Serves the current role: its commands and INFO sections plus the role-change commands. */
  private serveRole(): void {
    const r = this.role
    const own: InfoSections = { replication: () => this.roleInfo() }
    if (r.kind === 'primary') {
      this.server.serve(r.primary, new CommandRegistry(...SHARED_COMMANDS, r.shipping.commands(), r.primary.commands(), this.commands(), this.saves.commands()),
        new InfoRegistry(r.primary.infoSections(), r.shipping.infoSections(), own, this.saves.infoSections()))
    } else {
      this.server.serve(r.backup, new CommandRegistry(...SHARED_COMMANDS, r.backup.commands(), this.commands(), this.saves.commands()),
        new InfoRegistry(r.backup.infoSections(), own, this.saves.infoSections()))
    }
  }

  private roleInfo(): Array<[string, string | number]> {
    const c = this.lastChange
    return [['role_change', c === null ? '' : c.what], ['role_change_ms', c === null ? 0 : Math.round(c.ms)], ['failover_log_cuts_total', this.visibleCutsTotal]]
  }

  /**
   * REPLICAOF NO ONE: a backup becomes the primary of a new epoch. Resolves
   * to the primary (at once on a primary: promotion is idempotent).
   */
  async promote(): Promise<Primary> {
    const r = this.role
    if (r.kind === 'primary') {
      if (r.primary.fenced !== null) throw dbError('READONLY', `this primary is fenced (${r.primary.fenced}); it rejoins with REPLICAOF host port`)
      return r.primary
    }
    this.beginChange()
    const started = performance.now()
    try {
      const o = this.options
      const log = await r.backup.promote()
      let shipping: Shipping | null = null
      const primary = Primary.adopt(primaryOptions(o), log, primaryHooks(o, () => this.server, () => shipping))
      shipping = new Shipping(primary, o.syncBackups, { released: () => this.server.releaseHeld() })
      this.role = { kind: 'primary', primary, shipping }
      this.serveRole()
      const ms = performance.now() - started
      this.lastChange = { what: `promoted to primary at epoch ${primary.epoch}, LSN ${primary.commitLsn()}`, ms }
      o.log(`PROMOTED: primary of epoch ${primary.epoch} from LSN ${primary.commitLsn()} (history ${primary.history.map((e) => `${e.epoch}@${e.startLsn}`).join(' ')}) in ${ms.toFixed(1)} ms; commit ${o.commit}, sync backups ${o.syncBackups}`)
      return primary
    } finally {
      this.changing = false
    }
  }

  /** REPLICAOF host port: follow that primary (a primary steps down first). */
  async follow(host: string, port: number): Promise<void> {
    const r = this.role
    if (r.kind === 'backup') {
      r.backup.repoint(host, port)
      this.options.log(`following ${host}:${port} from now on (REPLICAOF)`)
      return
    }
    this.beginChange()
    const started = performance.now()
    try {
      const o = this.options
      const primary = r.primary
      primary.fence(`REPLICAOF ${host}:${port}`)
      // Nothing it holds will be acknowledged by this node now: held replies get the fenced error at once.
      this.server.failHeld(primary.heldReplyError())
      const released = primary.releasedLsn()
      r.shipping.close()
      await primary.stepDown(`following ${host}:${port}`)
      // What clients may have seen here stays visible; the rest waits for the new primary's word (or is cut).
      writeConfirmedLsn(o.dir, Math.min(released, primary.durableLsn()))
      const backup = await Backup.open(backupOptions(o, host, port, (why) => this.reopenBackup(why)))
      this.role = { kind: 'backup', backup }
      this.serveRole()
      backup.start(this.server.port)
      const ms = performance.now() - started
      this.lastChange = { what: `stepped down at LSN ${primary.commitLsn()} to follow ${host}:${port}`, ms }
      o.log(`STEPPED DOWN: following ${host}:${port} (log end LSN ${primary.commitLsn()}, acknowledged up to ${released}) in ${ms.toFixed(1)} ms`)
    } finally {
      this.changing = false
    }
  }

  /** A backup cut its log below what it had shown (a failover) and closed: open it again from the cut log. */
  private reopenBackup(why: string): void {
    const r = this.role
    if (r.kind !== 'backup') return
    const o = this.options
    const cuts = r.backup.visibleCutsTotal + this.visibleCutsTotal
    Backup.open(backupOptions(o, r.backup.options.primaryHost, r.backup.options.primaryPort, (w) => this.reopenBackup(w))).then((backup) => {
      this.visibleCutsTotal = cuts
      this.role = { kind: 'backup', backup }
      this.serveRole()
      backup.start(this.server.port)
      o.log(`backup reopened (${why}): index rebuilt up to LSN ${backup.appliedLsn()}`)
    }, (err: unknown) => {
      o.log(`FATAL: reopening the backup after a log cut failed: ${String(err)}`)
      process.exit(70)
    })
  }

  private beginChange(): void {
    if (this.changing) throw dbError('QUEUE_AT_LIMIT', 'a role change is already in progress')
    this.changing = true
  }

  /** The role-change commands, served in both roles. */
  private commands(): CommandSpec[] {
    const replicaof = (s: Session, a: Parameters<CommandSpec['run']>[1]): void => {
      const host = argString(a, 1)
      const portText = argString(a, 2)
      if (host.toUpperCase() === 'NO' && portText.toUpperCase() === 'ONE') {
        this.reply(s, this.promote(), () => s.conn.out.simple('OK'))
        return
      }
      const port = Number(portText)
      if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) { s.conn.out.error('ERR Invalid master port'); return }
      if (host.length === 0 || host.length > 255) { s.conn.out.error('ERR Invalid master host'); return }
      if ((host === '127.0.0.1' || host === 'localhost') && port === this.server.port) { s.conn.out.error('ERR can\'t replicate from itself'); return }
      this.reply(s, this.follow(host, port), () => s.conn.out.simple('OK'))
    }
    return [
      // Answered once the role change is done (the connection waits): refused inside MULTI.
      { name: 'replicaof', arity: 3, flags: F_ADMIN | F_BLOCKING, run: replicaof },
      { name: 'slaveof', arity: 3, flags: F_ADMIN | F_BLOCKING, run: replicaof },
      {
        // FRESHET.PROMOTE: REPLICAOF NO ONE that answers [epoch, LSN the epoch starts at, ms it took].
        name: 'freshet.promote', arity: 1, flags: F_ADMIN | F_BLOCKING,
        run: (s) => {
          const started = performance.now()
          this.reply(s, this.promote(), (p) => {
            s.conn.out.arrayHeader(3)
            s.conn.out.integer(p.epoch)
            s.conn.out.integer(p.history[p.history.length - 1].startLsn)
            s.conn.out.integer(Math.round(performance.now() - started))
          })
        },
      },
    ]
  }

  /** Answers a role-change command once its work is done (the connection is parked meanwhile). */
  private reply<T>(s: Session, work: Promise<T>, answer: (value: T) => void): void {
    s.server.answerWhenDone(s.conn, work, answer, (err) => {
      if (err instanceof DbError) return `${err.code === 'READONLY' ? 'READONLY' : 'ERR'} ${err.message}`
      this.options.log(`role change failed: ${err instanceof Error ? err.stack : String(err)}`)
      return 'ERR role change failed (the server logged it)'
    })
  }

  stop(): Promise<void> {
    if (this.stopping === null) this.stopping = (async () => {
      const r = this.role
      this.metrics?.close()
      if (r.kind === 'primary') {
        // Seal and flush the log before closing connections: replies of writes made durable still go out.
        this.server.quiesce()
        await r.primary.close()
        await this.server.close()
        r.shipping.close()
      } else {
        await this.server.close()
        await r.backup.close()
      }
    })()
    return this.stopping
  }
}

function primaryOptions(o: NodeRunOptions): PrimaryOptions {
  return {
    dir: o.dir, segmentBytes: o.segmentBytes, commit: o.commit, maxMemoryBytes: o.maxMemoryBytes,
    valueBytesMax: o.valueBytesMax, recoveryWorkers: Math.min(4, os.cpus().length), acceptLogDamage: o.acceptLogDamage,
    retainBytes: o.retainBytes, initialLsn: o.initialLsn, syncTimeoutMs: o.syncTimeoutMs, log: o.log,
  }
}

function primaryHooks(o: NodeRunOptions, server: () => RespServer | null, shipping: () => Shipping | null): PrimaryHooks {
  return {
    released: () => server()?.releaseHeld(),
    sealed: () => shipping()?.pump(),
    safe: () => shipping()?.sendSafe(),
    remoteReleased: isRemoteMode(o.commit) ? () => shipping()?.remoteReleased() ?? 0 : null,
    cleaned: (holes) => shipping()?.cleaned(holes),
    retainFloor: () => shipping()?.retainFloor() ?? Number.MAX_SAFE_INTEGER,
    shippedFloor: () => shipping()?.shippedFloor() ?? Number.MAX_SAFE_INTEGER,
    syncShortage: () => shipping()?.syncShortage() ?? null,
  }
}

function backupOptions(o: NodeRunOptions, host: string, port: number, reopen: (why: string) => void): BackupOptions {
  return {
    dir: o.dir, segmentBytes: o.segmentBytes, primaryHost: host, primaryPort: port, primaryAuth: o.primaryAuth,
    workers: o.workers, listenPort: o.port, acceptLogDamage: o.acceptLogDamage, maxMemoryBytes: o.maxMemoryBytes, reopen, log: o.log,
  }
}
