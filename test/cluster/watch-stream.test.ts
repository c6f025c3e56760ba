// One watch stream against the fake API server (events, bookmarks, resume, 410, refusals, endings),
// and against a raw node:http server where the bytes on the wire are the point (chunk-split lines,
// malformed lines, the credentials sent). No timed assertions: waits are for conditions.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { KubeConfig } from '@kubernetes/client-node'
import { watchStream, type WatchEnd, type WatchEvent, type WatchStreamOptions } from '../../src/cluster/watch-stream.ts'
import { Condition } from '../support/condition.ts'
import { FakeKubeApi } from '../support/fake-kube-api.ts'

type Test = Parameters<NonNullable<Parameters<typeof t.test>[0]>>[0]

async function startFake(t: Test): Promise<FakeKubeApi> {
  const fake = await FakeKubeApi.start()
  t.teardown(() => fake.close())
  fake.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'media' } })
  return fake
}

function secret(name: string, labels?: Record<string, string>): object {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'media', ...(labels ? { labels } : {}) }, data: { k: 'dg==' } }
}

/** A running watch: its events so far, a wait on them, and its ending. */
interface Running {
  readonly events: WatchEvent[]
  readonly until: (predicate: (events: WatchEvent[]) => boolean) => Promise<void>
  readonly opened: Promise<void>
  readonly end: Promise<WatchEnd>
}

function watch(kc: KubeConfig, options: Partial<WatchStreamOptions> = {}): Running {
  const events: WatchEvent[] = []
  const changes = new Condition()
  let open: () => void = () => {}
  const opened = new Promise<void>((resolve) => (open = resolve))
  const end = watchStream(kc, { path: '/api/v1/secrets', onOpen: open, ...options }, (event) => {
    events.push(event)
    changes.notify()
  })
  return { events, opened, end, until: (predicate) => changes.until(() => predicate(events)) }
}

const summary = (events: WatchEvent[]): string[] => events.map((e) => `${e.type} ${String((e.object.metadata as { name?: string }).name ?? '')}`)
const rvOf = (event: WatchEvent | undefined): unknown => (event?.object.metadata as { resourceVersion?: unknown } | undefined)?.resourceVersion

t.test('events in order, with the query the API server expects; a graceful server end is closed', async (t) => {
  const fake = await startFake(t)
  const from = fake.resourceVersion
  const running = watch(fake.kubeConfig(), { resourceVersion: from, timeoutSeconds: 300, labelSelector: 'app=x' })
  await running.opened
  fake.seed(secret('one', { app: 'x' }), secret('ignored'))
  fake.seed({ ...secret('one', { app: 'x' }), data: { k: 'dw==' } })
  fake.seed(secret('two', { app: 'x' }))
  await running.until((events) => events.length === 3)
  t.same(summary(running.events), ['ADDED one', 'MODIFIED one', 'ADDED two'])
  t.equal(rvOf(running.events[2]), fake.resourceVersion, 'objects come as the server sent them')
  t.same(fake.requests.find((r) => r.watch)?.query, { watch: '1', allowWatchBookmarks: 'true', resourceVersion: from, timeoutSeconds: '300', labelSelector: 'app=x' })
  fake.endWatches()
  t.same(await running.end, { kind: 'closed' })
  t.equal(fake.openWatches(), 0)
})

t.test('bookmarks arrive as events carrying the resourceVersion', async (t) => {
  const fake = await startFake(t)
  const running = watch(fake.kubeConfig(), { resourceVersion: fake.resourceVersion })
  await running.opened
  fake.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'elsewhere' } }) // moves the RV, no secret event
  fake.sendBookmarks()
  await running.until((events) => events.length === 1)
  t.equal(running.events[0]?.type, 'BOOKMARK')
  t.equal(rvOf(running.events[0]), fake.resourceVersion)
  fake.endWatches()
  await running.end
})

t.test('a watch from a resourceVersion replays only what came after it; without one, the current state as ADDED', async (t) => {
  const fake = await startFake(t)
  fake.seed(secret('before'))
  const middle = fake.resourceVersion
  fake.seed(secret('after'))
  const resumed = watch(fake.kubeConfig(), { resourceVersion: middle })
  await resumed.until((events) => events.length === 1)
  t.same(summary(resumed.events), ['ADDED after'])
  const fresh = watch(fake.kubeConfig(), {})
  await fresh.until((events) => events.length === 2)
  t.same(summary(fresh.events).sort(), ['ADDED after', 'ADDED before'])
  t.notOk('resourceVersion' in (fake.requests.filter((r) => r.watch)[1]?.query ?? {}), 'no empty resourceVersion is sent')
  fake.endWatches()
  await Promise.all([resumed.end, fresh.end])
})

t.test('410 Expired: as an ERROR event and as an HTTP status, both ending failed with code 410 and the message', async (t) => {
  const fake = await startFake(t)
  const old = fake.resourceVersion
  fake.seed(secret('one'))
  fake.compactHistory()
  const running = watch(fake.kubeConfig(), { resourceVersion: old })
  const end = await running.end
  t.match(end, { kind: 'failed', code: 410, message: /^ERROR event HTTP 410 Expired: too old resource version/ })
  t.same(running.events, [], 'the ERROR event is the ending, not an event')

  fake.injectFailure({ method: 'GET', path: '/api/v1/secrets', code: 410, reason: 'Expired', message: 'too old resource version: 1 (5)' })
  t.same(await watch(fake.kubeConfig(), { resourceVersion: '1' }).end, { kind: 'failed', code: 410, message: 'HTTP 410 Expired: too old resource version: 1 (5)' })
})

t.test('a refused watch ends failed with its HTTP status and the Status reason and message', async (t) => {
  const fake = await startFake(t)
  fake.injectFailure({ method: 'GET', path: '/api/v1/secrets', code: 403, reason: 'Forbidden', message: 'secrets is forbidden: User "x" cannot watch resource "secrets"' })
  fake.injectFailure({ method: 'GET', path: '/api/v1/secrets', code: 500, message: 'etcd is sad' })
  const opened = { value: false }
  const forbidden = await watchStream(fake.kubeConfig(), { path: '/api/v1/secrets', onOpen: () => (opened.value = true) }, () => {})
  t.same(forbidden, { kind: 'failed', code: 403, message: 'HTTP 403 Forbidden: secrets is forbidden: User "x" cannot watch resource "secrets"' })
  t.equal(opened.value, false, 'a refused watch never opened')
  t.same(await watch(fake.kubeConfig()).end, { kind: 'failed', code: 500, message: 'HTTP 500 InternalError: etcd is sad' })
})

t.test('a dropped connection ends failed without a code, naming the network error', async (t) => {
  const fake = await startFake(t)
  const running = watch(fake.kubeConfig(), { resourceVersion: fake.resourceVersion })
  await running.opened
  fake.dropWatches()
  const end = await running.end
  t.equal(end.kind, 'failed')
  t.notOk('code' in end, 'no HTTP code')
  t.match(end, { message: /terminated|other side closed|socket/ }, 'undici: "terminated (other side closed)"')
})

t.test('no data for inactivityMs ends the stream as inactive and closes the connection', async (t) => {
  const fake = await startFake(t)
  fake.seed(secret('one'))
  const running = watch(fake.kubeConfig(), { resourceVersion: fake.resourceVersion, inactivityMs: 50 })
  t.same(await running.end, { kind: 'inactive' })
  await fake.waitFor(() => fake.openWatches() === 0)
  t.equal(fake.openWatches(), 0)
})

t.test('abort by signal: before the request, and on an open stream (the connection closes)', async (t) => {
  const fake = await startFake(t)
  t.same(await watch(fake.kubeConfig(), { signal: AbortSignal.abort() }).end, { kind: 'aborted' })
  const controller = new AbortController()
  const running = watch(fake.kubeConfig(), { resourceVersion: fake.resourceVersion, signal: controller.signal })
  await running.opened
  await fake.waitFor(() => fake.openWatches() === 1)
  controller.abort()
  t.same(await running.end, { kind: 'aborted' })
  await fake.waitFor(() => fake.openWatches() === 0)
  t.equal(fake.openWatches(), 0)
})

t.test('a kubeconfig without a current cluster ends failed, without a request', async (t) => {
  t.same(await watchStream(new KubeConfig(), { path: '/api/v1/secrets' }, () => {}), { kind: 'failed', message: 'the kubeconfig has no current cluster' })
})

/** A raw HTTP server whose handler writes the watch bytes itself; a kubeconfig pointing at it. */
async function rawServer(t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<KubeConfig> {
  const server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const kc = new KubeConfig()
  kc.loadFromOptions({
    clusters: [{ name: 'raw', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }], // client-node refuses http:// otherwise
    users: [{ name: 'raw', token: 'raw-token' }],
    contexts: [{ name: 'raw', cluster: 'raw', user: 'raw' }],
    currentContext: 'raw',
  })
  return kc
}

const line = (type: string, name: string, extra: object = {}): string => `${JSON.stringify({ type, object: { metadata: { name, resourceVersion: '7' }, ...extra } })}\n`

t.test('lines split across chunks (also inside a UTF-8 character) are joined; the kubeconfig credentials are sent', async (t) => {
  let authorization: string | undefined
  let res: ServerResponse | undefined
  const served = new Condition()
  const kc = await rawServer(t, (req, response) => {
    authorization = req.headers.authorization
    res = response
    response.writeHead(200, { 'Content-Type': 'application/json' })
    response.flushHeaders()
    served.notify()
  })
  const running = watch(kc)
  const refused = running.end.then((end) => Promise.reject(new Error(`the watch ended before the server saw it: ${JSON.stringify(end)}`)))
  await Promise.race([served.until(() => res !== undefined), refused])
  refused.catch(() => undefined)
  // Each next piece is written only after the event before it was delivered, so the pieces cannot
  // arrive as one chunk: the split is certain, not a matter of timing.
  const second = Buffer.from(line('MODIFIED', 'café', { data: { note: 'ünïcödé' } }))
  const cut = second.indexOf(Buffer.from('é')) + 1 // inside the two bytes of é
  res!.write(Buffer.concat([Buffer.from(line('ADDED', 'first')), second.subarray(0, cut)]))
  await running.until((events) => events.length === 1)
  res!.write(second.subarray(cut, cut + 5))
  res!.write(Buffer.concat([second.subarray(cut + 5), Buffer.from('\n')])) // a blank line is skipped
  await running.until((events) => events.length === 2)
  res!.end(line('DELETED', 'last').trimEnd()) // the last line without its newline
  t.same(await running.end, { kind: 'closed' })
  t.same(summary(running.events), ['ADDED first', 'MODIFIED café', 'DELETED last'])
  t.same(running.events[1]?.object.data, { note: 'ünïcödé' })
  t.equal(authorization, 'Bearer raw-token')
})

const truncated = '{"type":"ADDED","object":{"data":{"password":"c2VjcmV0"}'

t.test('a malformed line ends the stream failed, naming the line but not quoting it; events before it were delivered', async (t) => {
  const closed = new Condition()
  let connectionClosed = false
  const kc = await rawServer(t, (_req, res) => {
    res.on('close', () => {
      connectionClosed = true
      closed.notify()
    })
    res.writeHead(200, { 'Content-Type': 'application/json' })
    res.write(`${line('ADDED', 'fine')}${truncated}\n`) // and the response stays open
  })
  const running = watch(kc)
  const end = await running.end
  t.same(end, { kind: 'failed', message: `malformed watch event: line 2 (${truncated.length} characters) is not JSON` })
  t.notOk(JSON.stringify(end).includes('c2VjcmV0'), 'no content of the line')
  t.same(summary(running.events), ['ADDED fine'])
  await closed.until(() => connectionClosed)
  t.ok(connectionClosed, 'the connection was released')

  const kc2 = await rawServer(t, (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' })
    res.end('{"kind":"Status"}\n')
  })
  t.same(await watch(kc2).end, { kind: 'failed', message: 'malformed watch event: line 1 is not a {type, object} event' })
})

t.test('a server that never answers ends as inactive; an ERROR event without a 410 keeps its code', async (t) => {
  const kc = await rawServer(t, () => {}) // accepts the connection, never sends a response head
  t.same(await watch(kc, { inactivityMs: 50 }).end, { kind: 'inactive' })

  const kc2 = await rawServer(t, (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' })
    res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', status: 'Failure', code: 500, reason: 'InternalError', message: 'etcd is sad' } })}\n`)
  })
  t.same(await watch(kc2).end, { kind: 'failed', code: 500, message: 'ERROR event HTTP 500 InternalError: etcd is sad' })
})

t.test('an exception from the event handler ends the stream failed instead of escaping', async (t) => {
  const fake = await startFake(t)
  fake.seed(secret('one'))
  const end = await watchStream(fake.kubeConfig(), { path: '/api/v1/secrets' }, () => {
    throw new Error('boom')
  })
  t.same(end, { kind: 'failed', message: 'the event handler threw: boom' })
  await fake.waitFor(() => fake.openWatches() === 0)
})
