// One open watch: newline-delimited JSON events over a chunked 200 response.
import type { ServerResponse } from 'node:http'
import { meta, type JsonObject } from './json.ts'
import { flag, queryMatcher, resourceVersionParam } from './list.ts'
import { apiVersionOf, type ResourceDef } from './resources.ts'
import type { Matcher } from './selectors.ts'
import { expired } from './status.ts'
import type { ObjectStore, StoredEvent } from './store.ts'

export interface WatchSpec {
  readonly def: ResourceDef
  readonly namespace: string | undefined
  readonly matches: Matcher // label and field selectors together
  readonly bookmarks: boolean
}

export class WatchConnection {
  readonly spec: WatchSpec
  readonly #res: ServerResponse
  readonly #queue: string[] = []
  #paused: boolean
  #endAfterFlush = false
  #closed = false
  readonly #onClose: () => void

  /** `onClose` runs once, as soon as the stream is ended or destroyed from either side. */
  constructor(res: ServerResponse, spec: WatchSpec, paused: boolean, onClose: () => void) {
    this.#res = res
    this.spec = spec
    this.#paused = paused
    this.#onClose = onClose
    res.on('close', () => this.#markClosed())
  }

  #markClosed(): void {
    if (this.#closed) return
    this.#closed = true
    this.#onClose()
  }

  get closed(): boolean {
    return this.#closed
  }

  #inScope(object: JsonObject): boolean {
    return (this.spec.namespace === undefined || meta(object).namespace === this.spec.namespace) && this.spec.matches(object)
  }

  /** Turns a store event into what this watcher sees, with the watch cache's selector rules. */
  offer(event: StoredEvent): void {
    if (event.def !== this.spec.def) return
    const now = event.type !== 'DELETED' && this.#inScope(event.object)
    const before = event.previous !== undefined && this.#inScope(event.previous)
    if (now) {
      this.send(before ? 'MODIFIED' : 'ADDED', event.object)
    } else if (before && event.previous) {
      // Leaving the selection (or being deleted) is a DELETED carrying the last matching state at the new RV.
      const last = { ...event.previous, metadata: { ...meta(event.previous), resourceVersion: String(event.rv) } }
      this.send('DELETED', last)
    }
  }

  send(type: string, object: JsonObject): void {
    this.#write(JSON.stringify({ type, object }))
  }

  bookmark(resourceVersion: number, annotations?: Record<string, string>): void {
    if (!this.spec.bookmarks) return
    const metadata: JsonObject = { resourceVersion: String(resourceVersion) }
    if (annotations) metadata.annotations = annotations
    this.send('BOOKMARK', { kind: this.spec.def.kind, apiVersion: apiVersionOf(this.spec.def), metadata })
  }

  /** An ERROR event with a Status, after which the server closes the stream. */
  fail(status: JsonObject): void {
    this.send('ERROR', status)
    if (this.#paused) this.#endAfterFlush = true
    else this.end()
  }

  pause(): void {
    this.#paused = true
  }

  resume(): void {
    this.#paused = false
    for (const line of this.#queue.splice(0)) this.#res.write(line)
    if (this.#endAfterFlush) this.end()
  }

  /** Graceful close, as on timeoutSeconds: the chunked body ends normally. Queued events are lost. */
  end(): void {
    this.#queue.length = 0
    if (!this.#closed) this.#res.end()
    this.#markClosed()
  }

  /** Abrupt close: the socket is destroyed mid-stream. */
  destroy(): void {
    this.#queue.length = 0
    this.#res.destroy()
    this.#markClosed()
  }

  #write(json: string): void {
    if (this.#closed) return
    if (this.#paused) this.#queue.push(`${json}\n`)
    else this.#res.write(`${json}\n`)
  }
}

export interface WatchRequest {
  readonly def: ResourceDef
  readonly namespace: string | undefined
  readonly name: string | undefined
  readonly query: URLSearchParams
  readonly paused: boolean
}

/**
 * Answers a watch: validates the query (throwing ApiError while a plain Status can still be sent),
 * starts the 200 stream, hands the connection to `register`, then replays what the resourceVersion asks for.
 */
export function openWatch(res: ServerResponse, store: ObjectStore, request: WatchRequest, register: (c: WatchConnection) => void, onClose: () => void): void {
  const { def, namespace, query: q } = request
  const matches = queryMatcher(def, q, request.name)
  const rv = resourceVersionParam(q)
  const sendInitialEvents = flag(q.get('sendInitialEvents'))
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' })
  res.flushHeaders()
  let timer: NodeJS.Timeout | undefined
  const connection = new WatchConnection(res, { def, namespace, matches, bookmarks: flag(q.get('allowWatchBookmarks')) }, request.paused, () => {
    clearTimeout(timer)
    onClose()
  })
  register(connection)
  const timeoutSeconds = Number(q.get('timeoutSeconds') ?? '0')
  if (timeoutSeconds > 0) timer = setTimeout(() => connection.end(), timeoutSeconds * 1000).unref()

  if (rv === '' || rv === '0' || sendInitialEvents) {
    // No resourceVersion: synthetic ADDED events for the current state, then changes.
    for (const object of store.list(def, namespace, matches)) connection.send('ADDED', object)
    if (sendInitialEvents) connection.bookmark(store.resourceVersion, { 'k8s.io/initial-events-end': 'true' })
    return
  }
  const events = store.eventsAfter(Number(rv))
  if (events === undefined) {
    // As the watch cache does: a 200 stream carrying one ERROR event, then the server closes it.
    connection.fail(expired(`too old resource version: ${rv} (${store.historyStart})`).toStatus())
    return
  }
  for (const event of events) connection.offer(event)
}
