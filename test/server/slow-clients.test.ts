// Slow and idle clients on loopback (issue 13 item 3): bare TCP that never handshakes, TLS that never
// sends, headers or a body trickled a byte at a time; each is closed by the server within its timeout
// (CONNECTION_LIMITS, the real values) while a normal review is answered meanwhile and an idle
// keep-alive connection outlives them all (it is kept longer than the API server's 90 s).
import { readFile } from 'node:fs/promises'
import net from 'node:net'
import tls from 'node:tls'
import t from 'tap'
import { createLogger } from '../../src/log.ts'
import { buildMetricsServer, buildWebhookServer, CONNECTION_LIMITS } from '../../src/server/app.ts'
import { createMetrics } from '../../src/server/metrics.ts'
import type { StatusDocument } from '../../src/server/status.ts'
import { snapshotOf } from '../support/snapshot.ts'
import { eventually, exampleText, makeCertificates, portOf, SERVICE_DNS, tempDir, WebhookClient } from '../support/live-webhook.ts'

const certs = await makeCertificates(await tempDir(t, 'slow-clients'))
const metrics = createMetrics({ readSnapshot: () => snapshotOf() })
const webhook = buildWebhookServer({
  snapshot: () => snapshotOf(), metrics, log: createLogger('silent'), readiness: { pending: () => [] },
  tls: { key: await readFile(certs.tlsKey, 'utf8'), cert: await readFile(certs.tlsCert, 'utf8') },
})
const status = buildMetricsServer({ metrics, log: createLogger('silent'), status: () => ({}) as StatusDocument })
t.teardown(async () => {
  webhook.server.closeAllConnections()
  status.server.closeAllConnections()
  await Promise.all([webhook.close(), status.close()])
})
const webhookUrl = await webhook.listen({ host: '127.0.0.1', port: 0 })
const statusUrl = await status.listen({ host: '127.0.0.1', port: 0 })

/** A client socket and whether (and when, relative to the others) the server closed it. */
interface Watched {
  readonly name: string
  readonly socket: net.Socket
  closed: boolean
  /** How many of the slow clients were closed before this one (ordering, not time). */
  closedAfter: number
}

const watched: Watched[] = []
let closedCount = 0
function watch(name: string, socket: net.Socket): Watched {
  const entry: Watched = { name, socket, closed: false, closedAfter: -1 }
  socket.on('error', () => {})
  socket.on('close', () => {
    entry.closed = true
    entry.closedAfter = closedCount++
  })
  socket.on('data', () => {})
  watched.push(entry)
  return entry
}

function tlsConnect(port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: SERVICE_DNS, ca: certs.ca }, () => resolve(socket))
    socket.once('error', reject)
  })
}

/** Writes `chunks` one per 500 ms until the socket closes (a slowloris). */
function trickle(socket: net.Socket, chunks: () => string): void {
  const timer = setInterval(() => { if (!socket.destroyed) socket.write(chunks()) }, 500)
  socket.once('close', () => clearInterval(timer))
}

t.test('the limits on the server objects: short for requests, keep-alive above the API server\'s 90 s', async (t) => {
  for (const [name, app] of [['webhook', webhook], ['status', status]] as const) {
    t.equal(app.server.headersTimeout, CONNECTION_LIMITS.headersTimeoutMs, `${name}: headersTimeout`)
    t.equal(app.server.requestTimeout, CONNECTION_LIMITS.requestTimeoutMs, `${name}: requestTimeout`)
    t.equal(app.server.timeout, CONNECTION_LIMITS.connectionTimeoutMs, `${name}: connection (inactivity) timeout`)
    t.equal(app.server.keepAliveTimeout, CONNECTION_LIMITS.keepAliveTimeoutMs, `${name}: keepAliveTimeout`)
    t.equal(app.server.maxConnections, CONNECTION_LIMITS.maxConnections, `${name}: a connection cap`)
    t.equal(app.server.maxRequestsPerSocket, CONNECTION_LIMITS.maxRequestsPerSocket, `${name}: maxRequestsPerSocket`)
  }
  t.ok(CONNECTION_LIMITS.keepAliveTimeoutMs > 90_000, 'idle keep-alive kept longer than Go\'s transport keeps it (90 s): the client closes first')
  t.ok(CONNECTION_LIMITS.headersTimeoutMs < CONNECTION_LIMITS.keepAliveTimeoutMs && CONNECTION_LIMITS.requestTimeoutMs <= 10_000, 'header and request timeouts short')
})

t.test('slow clients are closed by the server; a review is answered meanwhile; idle keep-alive outlives them', async (t) => {
  const port = portOf(webhookUrl)
  // A keep-alive connection that made one request and sits idle, as the API server's does.
  const keepAlive = new WebhookClient(webhookUrl, { ca: certs.ca })
  t.teardown(() => keepAlive.close())
  const first = await keepAlive.request('GET', '/healthz')
  t.equal(first.status, 200)
  const idleKeepAlive = watch('idle keep-alive', first.socket)
  closedCount = 0

  const slow: Watched[] = []
  for (let i = 0; i < 5; i++) {
    slow.push(watch(`bare TCP ${i}`, net.connect(port, '127.0.0.1')))
    slow.push(watch(`TLS, nothing sent ${i}`, await tlsConnect(port)))
    const headers = watch(`TLS, trickled headers ${i}`, await tlsConnect(port))
    headers.socket.write('POST /mutate HTTP/1.1\r\nHost: x\r\n')
    trickle(headers.socket, () => 'X-Slow: 1\r\n')
    slow.push(headers)
    const body = watch(`TLS, trickled body ${i}`, await tlsConnect(port))
    body.socket.write('POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{')
    trickle(body.socket, () => ' ')
    slow.push(body)
    slow.push(watch(`metrics port, nothing sent ${i}`, net.connect(portOf(statusUrl), '127.0.0.1')))
  }

  // Meanwhile a real review is answered at once on a fresh connection.
  const client = new WebhookClient(webhookUrl, { ca: certs.ca, keepAlive: false })
  t.teardown(() => client.close())
  const review = await client.request('POST', '/mutate', await exampleText('pvc-restore'))
  t.equal(review.status, 200, 'a review is answered while 25 slow clients hold connections')

  await eventually('every slow client closed by the server', async () => (slow.every((s) => s.closed) ? true : undefined), 30_000)
  for (const s of slow) t.ok(s.closed, `${s.name}: closed by the server`)
  t.notOk(idleKeepAlive.closed, 'the idle keep-alive connection is still open after all of them')
  const again = await keepAlive.request('GET', '/healthz')
  t.equal(again.status, 200)
  t.ok(again.reusedSocket, 'and is reused for the next request')
})
