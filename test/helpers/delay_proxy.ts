/**
 * A TCP proxy on loopback that holds back what flows from its target (a
 * primary) to its clients (backups) by a fixed delay, in order: a replication
 * link that is slow on purpose, so a backup is behind while writes flow. What
 * the clients send (ACKs) passes at once. cut() drops every connection and
 * refuses new ones (a lost primary); close() stops it.
 */
import net from 'node:net'

export class DelayProxy {
  readonly delayMs: number
  private readonly server: net.Server
  private readonly sockets: Set<net.Socket>
  private refusing: boolean

  private constructor(server: net.Server, delayMs: number) {
    this.server = server
    this.delayMs = delayMs
    this.sockets = new Set()
    this.refusing = false
  }

  static async start(targetPort: number, delayMs: number): Promise<DelayProxy> {
    let proxy: DelayProxy | null = null
    const server = net.createServer((client) => proxy!.accept(client, targetPort))
    proxy = new DelayProxy(server, delayMs)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return proxy
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port
  }

  private accept(client: net.Socket, targetPort: number): void {
    if (this.refusing) { client.destroy(); return }
    const upstream = net.connect(targetPort, '127.0.0.1')
    this.sockets.add(client)
    this.sockets.add(upstream)
    const end = (): void => { client.destroy(); upstream.destroy(); this.sockets.delete(client); this.sockets.delete(upstream) }
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
    client.on('data', (d) => upstream.write(d))
    // Timers of one duration fire in the order they were set: the stream stays in order.
    upstream.on('data', (d) => { const copy = Buffer.from(d); setTimeout(() => { if (!client.destroyed) client.write(copy) }, this.delayMs) })
  }

  /** Drops every connection and refuses new ones. */
  cut(): void {
    this.refusing = true
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
  }

  async close(): Promise<void> {
    this.cut()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
