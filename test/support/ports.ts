// Loopback ports for tests of what a process opens and closes.
import { connect, createServer, type AddressInfo } from 'node:net'

/** A loopback port nothing listens on (bound once, then closed). */
export async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((closed) => server.close(() => closed()))
  return port
}

/** Whether a TCP connection to 127.0.0.1:`port` is refused. */
export function refused(port: number): Promise<boolean> {
  return new Promise((answer) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      answer(false)
    })
    socket.once('error', (error: NodeJS.ErrnoException) => answer(error.code === 'ECONNREFUSED'))
  })
}
