// One watch request of one collection, made like the list (list-page.ts: client-node's KubeConfig
// authenticates it and sets up TLS, and the bytes are ours), read as newline-delimited JSON events.
//
// Why not client-node's Watch: its inactivity timeout (30 s) is a private field. The API server
// sends a bookmark about once a minute, so a quiet watch behind a 30 s timeout never sees one; and
// it drops malformed lines silently and reports HTTP refusals without the Status message.
import type { KubeConfig } from '@kubernetes/client-node'
import { asObject } from '../json.ts'
import { authenticatedGet, describeHttpError, type KubeObject, objectBody, statusMessage, text } from './list-page.ts'

/** One event of a watch: ADDED, MODIFIED, DELETED or BOOKMARK (or a type a newer server adds). */
export interface WatchEvent {
  readonly type: string
  readonly object: KubeObject
}

/**
 * How a watch stream ended.
 * - `closed`: the server ended the response normally (its timeoutSeconds, or a restart); resume.
 * - `inactive`: no byte arrived for `inactivityMs` (a half-open connection, or a very quiet watch).
 * - `aborted`: the caller's signal.
 * - `failed`: `code` is the HTTP status of a refused watch or of an ERROR event's Status (410: the
 *   resourceVersion is too old, relist); no code for network errors and malformed lines.
 */
export type WatchEnd =
  | { readonly kind: 'closed' }
  | { readonly kind: 'inactive' }
  | { readonly kind: 'aborted' }
  | { readonly kind: 'failed'; readonly code?: number; readonly message: string }

export interface WatchStreamOptions {
  /** The collection path, e.g. `/api/v1/secrets` or `/apis/volsync.backube/v1alpha1/replicationdestinations`. */
  readonly path: string
  /** Events after this version; absent or '' asks the server for the current state as ADDED events. */
  readonly resourceVersion?: string
  /** The server ends the watch (gracefully) after this many seconds. */
  readonly timeoutSeconds?: number
  readonly labelSelector?: string
  /** No byte (event, bookmark or response head) for this long ends the stream as `inactive`; default 90 s. */
  readonly inactivityMs?: number
  readonly signal?: AbortSignal
  /** The server accepted the watch (HTTP 200); events follow. */
  readonly onOpen?: () => void
}

const DEFAULT_INACTIVITY_MS = 90_000

/** Thrown inside the reader to end the stream with a `failed` ending; never escapes watchStream. */
class StreamFailure extends Error {
  readonly code: number | undefined
  constructor(message: string, code?: number) {
    super(message)
    this.code = code
  }
}

/** One line of the stream as an event. The line itself is never quoted: a Secret watch carries values. */
function parseEvent(line: string, lineNumber: number): WatchEvent {
  let parsed: unknown
  try {
    parsed = JSON.parse(line)
  } catch {
    throw new StreamFailure(`malformed watch event: line ${lineNumber} (${line.length} characters) is not JSON`)
  }
  const event = asObject(parsed)
  const type = text(event?.type)
  const object = asObject(event?.object)
  if (type === undefined || object === undefined) throw new StreamFailure(`malformed watch event: line ${lineNumber} is not a {type, object} event`)
  return { type, object }
}

/**
 * Watches `options.path` with `watch=1&allowWatchBookmarks=true` (and resourceVersion,
 * timeoutSeconds, labelSelector when given) through `kc`'s current cluster and credentials, and
 * calls `onEvent` for each event in order, synchronously as its line completes. An ERROR event is
 * not passed on: it ends the stream as `failed` with its Status's code and message (the server
 * closes the stream after one). Resolves with how the stream ended; never rejects (an exception from
 * `onEvent` or `onOpen` ends it as `failed`). The connection is released in every case.
 */
export async function watchStream(kc: KubeConfig, options: WatchStreamOptions, onEvent: (event: WatchEvent) => void): Promise<WatchEnd> {
  const cluster = kc.getCurrentCluster()
  if (!cluster) return { kind: 'failed', message: 'the kubeconfig has no current cluster' }
  const url = new URL(cluster.server + options.path)
  url.searchParams.set('watch', '1')
  url.searchParams.set('allowWatchBookmarks', 'true')
  if (options.resourceVersion) url.searchParams.set('resourceVersion', options.resourceVersion)
  if (options.timeoutSeconds !== undefined) url.searchParams.set('timeoutSeconds', String(options.timeoutSeconds))
  if (options.labelSelector) url.searchParams.set('labelSelector', options.labelSelector)

  const inactivity = new AbortController()
  const signal = options.signal ? AbortSignal.any([options.signal, inactivity.signal]) : inactivity.signal
  let timer: NodeJS.Timeout | undefined
  // Armed before the request, so a server that never answers counts too; re-armed by every chunk.
  const touch = (): void => {
    clearTimeout(timer)
    timer = setTimeout(() => inactivity.abort(), options.inactivityMs ?? DEFAULT_INACTIVITY_MS)
    timer.unref() // the open socket keeps the process alive, not this timer
  }
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined
  try {
    touch()
    const response = await authenticatedGet(kc, url, signal)
    if (response.httpStatusCode !== 200) {
      const code = response.httpStatusCode
      return { kind: 'failed', code, message: statusMessage(code, await objectBody(response)) }
    }
    const body = response.body.stream()
    if (!body) return { kind: 'failed', message: 'the watch response has no body' }
    options.onOpen?.()
    reader = body.getReader()
    const decoder = new TextDecoder()
    let partial = '' // the start of a line whose newline has not arrived yet
    let lineNumber = 0
    const deliver = (line: string): void => {
      lineNumber++
      if (line.trim() === '') return
      const event = parseEvent(line, lineNumber)
      if (event.type === 'ERROR') {
        const code = typeof event.object.code === 'number' ? event.object.code : undefined
        throw new StreamFailure(`ERROR event ${statusMessage(code ?? 0, event.object)}`, code)
      }
      try {
        onEvent(event)
      } catch (error) {
        throw new StreamFailure(`the event handler threw: ${describeHttpError(error)}`)
      }
    }
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      touch()
      const chunk = decoder.decode(value, { stream: true })
      // Only the new chunk is searched for newlines, so a large object in many chunks stays linear.
      let start = 0
      for (let newline = chunk.indexOf('\n'); newline !== -1; newline = chunk.indexOf('\n', start)) {
        const line = partial + chunk.slice(start, newline)
        partial = ''
        start = newline + 1
        deliver(line)
      }
      partial += chunk.slice(start)
    }
    deliver(partial + decoder.decode()) // a last line without its newline; '' is skipped
    return { kind: 'closed' }
  } catch (error) {
    if (error instanceof StreamFailure) return error.code === undefined ? { kind: 'failed', message: error.message } : { kind: 'failed', code: error.code, message: error.message }
    if (options.signal?.aborted) return { kind: 'aborted' }
    if (inactivity.signal.aborted) return { kind: 'inactive' }
    return { kind: 'failed', message: describeHttpError(error) }
  } finally {
    clearTimeout(timer)
    // Cancelling the body closes the connection; a failed or refused response's body is dropped too.
    reader?.cancel().catch(() => undefined)
    inactivity.abort()
  }
}
