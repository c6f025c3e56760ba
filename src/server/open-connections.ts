// Every TCP connection of one listening server, so that shutdown can end by a deadline: Node's
// server.close() stops accepting and closes idle keep-alive connections, but waits without end for a
// connection mid-request, mid-handshake or trickling bytes.
import type { Server, Socket } from 'node:net'

/** The TCP connections of a server (raw sockets, before TLS), tracked from construction. */
export class OpenConnections {
  readonly #sockets = new Set<Socket>()

  /** Tracks every connection `server` accepts from now on (its 'connection' event; TLS ones before their handshake). */
  constructor(server: Server) {
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
    })
  }

  /** Connections accepted and not closed yet. */
  get count(): number {
    return this.#sockets.size
  }

  /** Destroys every connection still open; returns how many there were. */
  destroyAll(): number {
    const count = this.#sockets.size
    for (const socket of this.#sockets) socket.destroy()
    this.#sockets.clear()
    return count
  }

  /**
   * Runs `close` (a server's close: stop accepting, idle connections closed, the rest waited for) and
   * destroys the connections still open at `deadline` (epoch ms), so it settles by then. Resolves to
   * how many connections were destroyed (0 when everything closed in time); never rejects.
   */
  async closeBy(close: () => Promise<unknown>, deadline: number): Promise<number> {
    let forced = 0
    const timer = setTimeout(() => { forced = this.destroyAll() }, Math.max(0, deadline - Date.now()))
    try {
      await close()
    } catch {
      // Closing a server that never listened: nothing left to wait for.
    } finally {
      clearTimeout(timer)
    }
    return forced
  }
}
