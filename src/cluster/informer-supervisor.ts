// Supervises one list+watch of one resource, for all namespaces, and keeps a reduced copy of it.
//
// Why not client-node's ListWatch/makeInformer: on a dropped socket it calls its error handlers and
// stops for good; it never asks for bookmarks, cannot be told to relist (watchdog, periodic), and
// caches whole objects, Secret values included. So the list (raw JSON, paged, the same shape watch
// events have) and the watch stream are ours (list-page.ts, watch-stream.ts), both driven by one
// loop below.
import { setTimeout as sleep } from 'node:timers/promises'
import type { KubeConfig } from '@kubernetes/client-node'
import type { WatchHealth } from '../state/cluster-state.ts'
import { asObject } from '../json.ts'
import type { Log } from '../log.ts'
import { describeHttpError, getListPage, type KubeObject, text } from './list-page.ts'
import { watchStream, type WatchEnd, type WatchEvent } from './watch-stream.ts'

export type { KubeObject } from './list-page.ts'

export interface BackoffOptions {
  readonly initialMs?: number // default 1 s
  readonly maxMs?: number // default 30 s
}

export interface InformerOptions<T> {
  /** Name in health and logs, e.g. `secrets`, `replicationdestinations.volsync.backube`. */
  readonly resource: string
  /** The all-namespaces collection path, e.g. `/api/v1/secrets`. */
  readonly path: string
  readonly labelSelector?: string
  /** What is kept of each object; undefined drops it. Whole objects are never stored. */
  readonly reduce: (object: KubeObject) => T | undefined
  /** Objects or health changed. Called synchronously and often: coalesce on the other side. */
  readonly onChange: () => void
  readonly log?: Pick<Log, 'info' | 'warn'>
  /** Relist when a live watch brought no event or bookmark for this long; default 5 min. */
  readonly watchdogMs?: number
  /** Full relist this often, so a missed event cannot persist; default 30 min. */
  readonly relistMs?: number
  readonly backoff?: BackoffOptions
  readonly pageSize?: number // default 500
  readonly requestTimeoutMs?: number // one list page; default 60 s
  /** Server-side watch timeout, jittered up to twice this; default 300 s, as client-go. */
  readonly watchTimeoutSeconds?: number
  /** A watch stream without any data for this long is reopened (client-side); default 90 s. */
  readonly watchInactivityMs?: number
  readonly random?: () => number
  readonly now?: () => number
}

/** Why one watch ended, which decides what the loop does next. */
type Ending =
  | { readonly kind: 'closed'; readonly quick: boolean } // graceful: resume from the last resourceVersion
  | { readonly kind: 'expired' } // 410 Gone: relist
  | { readonly kind: 'relist'; readonly why: 'watchdog' | 'periodic' }
  // `error.message` is the one line health reports ("list: ...", "watch: ..."); its cause, when any, what was thrown.
  | { readonly kind: 'error'; readonly error: Error }

interface Entry<T> {
  readonly rv: string | undefined
  readonly value: T
}

/** Exponential with "equal jitter" (half the step fixed, half random), so many clients spread out. */
export function backoffDelay(failures: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const step = Math.min(options.maxMs ?? 30_000, (options.initialMs ?? 1000) * 2 ** Math.max(0, Math.min(failures - 1, 30)))
  return Math.round(step / 2 + (random() * step) / 2)
}

/**
 * One list+watch of one resource across all namespaces, kept as `reduce`d entries by `namespace/name`.
 * `start` runs it in the background until `stop`: a failed list or watch retries with `backoffDelay`, a
 * 410 Gone or a silent watch (`watchdogMs`) relists, and every `relistMs` it relists anyway. Every change
 * calls `onChange` synchronously; errors are logged at warn with `{ err }` and reported in `health()`,
 * never thrown. Reads the API server with the kubeconfig's credentials; writes nothing.
 */
export class InformerSupervisor<T> {
  readonly #kc: KubeConfig
  readonly #o: InformerOptions<T>
  readonly #now: () => number
  readonly #watchdogMs: number
  readonly #relistMs: number
  #objects = new Map<string, Entry<T>>()
  #rv = '' // '' = relist before the next watch
  #version = 0
  #synced = false
  #lastList: number | null = null
  #lastEvent: number | null = null
  #restarts = 0
  #failures = 0 // consecutive; an event or bookmark resets it
  #error: string | null = null
  #abort: AbortController | undefined
  #loop: Promise<void> | undefined
  #interrupt: ((ending: Ending) => void) | undefined // ends the live watch
  #timer: NodeJS.Timeout | undefined

  constructor(kubeConfig: KubeConfig, options: InformerOptions<T>) {
    this.#kc = kubeConfig
    this.#o = options
    this.#now = options.now ?? Date.now
    this.#watchdogMs = options.watchdogMs ?? 5 * 60_000
    this.#relistMs = options.relistMs ?? 30 * 60_000
  }

  /** The first list finished. */
  get synced(): boolean {
    return this.#synced
  }

  /** Bumped on every change of the objects, so readers can cache what they derive. */
  get version(): number {
    return this.#version
  }

  /** Current objects by `namespace/name` (cluster-scoped: `name`). */
  *entries(): IterableIterator<[string, T]> {
    for (const [key, entry] of this.#objects) yield [key, entry.value]
  }

  health(): WatchHealth {
    return { resource: this.#o.resource, lastList: this.#lastList, lastEvent: this.#lastEvent, restarts: this.#restarts, error: this.#error }
  }

  start(): void {
    if (this.#loop) return
    this.#abort = new AbortController()
    this.#loop = this.#run(this.#abort.signal)
  }

  async stop(): Promise<void> {
    this.#abort?.abort()
    this.#interrupt?.({ kind: 'closed', quick: false })
    await this.#loop
    this.#loop = undefined
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let ending: Ending
      try {
        if (this.#rv === '') await this.#list(signal)
        ending = await this.#watch(signal)
      } catch (error) {
        ending = { kind: 'error', error: new Error(`list: ${describeHttpError(error)}`, { cause: error }) }
      }
      if (signal.aborted) return
      const delay = this.#after(ending)
      if (delay > 0) await sleep(delay, undefined, { signal }).catch(() => undefined)
    }
  }

  /** Books the ending (health, log) and answers how long to wait before the next cycle. */
  #after(ending: Ending): number {
    const { resource, log } = this.#o
    const backoff = (): number => backoffDelay(++this.#failures, this.#o.backoff, this.#o.random)
    switch (ending.kind) {
      case 'closed':
        // A server that ends every watch at once must not turn this into a busy loop.
        return ending.quick ? backoff() : 0
      case 'relist':
        this.#rv = ''
        if (ending.why === 'periodic') return 0
        this.#restarts++
        log?.warn({ resource, watchdogMs: this.#watchdogMs }, 'no watch event or bookmark for too long; relisting')
        this.#o.onChange()
        return 0
      case 'expired': {
        this.#rv = ''
        this.#restarts++
        log?.info({ resource }, 'watch resourceVersion expired (410 Gone); relisting')
        this.#o.onChange()
        const delayMs = backoff()
        return this.#failures === 1 ? 0 : delayMs // the first 410 relists at once
      }
      case 'error': {
        this.#restarts++
        this.#error = ending.error.message
        const delayMs = backoff()
        log?.warn({ resource, err: ending.error, failures: this.#failures, delayMs }, 'list/watch failed; retrying')
        this.#o.onChange()
        return delayMs
      }
    }
  }

  /** The key and kept entry for an object, or undefined when it has no name or is dropped. */
  #entry(object: KubeObject): [string, Entry<T> | undefined] | undefined {
    const metadata = asObject(object.metadata)
    const name = text(metadata?.name)
    if (name === undefined) return undefined
    const namespace = text(metadata?.namespace)
    const value = this.#o.reduce(object)
    return [namespace === undefined ? name : `${namespace}/${name}`, value === undefined ? undefined : { rv: text(metadata?.resourceVersion), value }]
  }

  async #list(signal: AbortSignal): Promise<void> {
    const cluster = this.#kc.getCurrentCluster()
    if (!cluster) throw new Error('the kubeconfig has no current cluster')
    const next = new Map<string, Entry<T>>()
    let rv = ''
    let token: string | undefined
    do {
      const url = new URL(cluster.server + this.#o.path)
      url.searchParams.set('limit', String(this.#o.pageSize ?? 500))
      if (token !== undefined) url.searchParams.set('continue', token)
      if (this.#o.labelSelector) url.searchParams.set('labelSelector', this.#o.labelSelector)
      const page = await getListPage(this.#kc, url, AbortSignal.any([signal, AbortSignal.timeout(this.#o.requestTimeoutMs ?? 60_000)]))
      const metadata = asObject(page.metadata)
      // All pages of one list come from the first page's snapshot: its RV is the list's.
      if (rv === '') rv = text(metadata?.resourceVersion) ?? ''
      for (const item of Array.isArray(page.items) ? page.items : []) {
        const [key, entry] = this.#entry(asObject(item) ?? {}) ?? []
        if (key !== undefined && entry !== undefined) next.set(key, entry)
      }
      token = text(metadata?.continue)
    } while (token !== undefined)
    if (rv === '') throw new Error('the list carried no resourceVersion')
    const previous = this.#objects
    const differs = previous.size !== next.size || [...next].some(([key, e]) => e.rv === undefined || previous.get(key)?.rv !== e.rv)
    this.#objects = next
    this.#rv = rv
    this.#lastList = this.#now()
    this.#error = null
    if (!this.#synced) this.#o.log?.info({ resource: this.#o.resource, objects: next.size }, 'initial list done')
    this.#synced = true
    if (differs || this.#version === 0) this.#version++
    this.#o.onChange()
  }

  /** One watch from the current resourceVersion, until it ends, fails or is interrupted. */
  async #watch(signal: AbortSignal): Promise<Ending> {
    if (signal.aborted) return { kind: 'closed', quick: false }
    const startedAt = this.#now()
    let received = false
    let interrupted: Ending | undefined
    const controller = new AbortController()
    this.#interrupt = (ending) => {
      interrupted ??= ending
      controller.abort()
    }

    const onEvent = ({ type, object }: WatchEvent): void => {
      if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED' && type !== 'BOOKMARK') return
      let objects = false
      const [key, entry] = type === 'BOOKMARK' ? [] : (this.#entry(object) ?? [])
      if (key !== undefined && entry !== undefined && type !== 'DELETED') {
        this.#objects.set(key, entry)
        objects = true
      } else if (key !== undefined) {
        objects = this.#objects.delete(key)
      }
      this.#rv = text(asObject(object.metadata)?.resourceVersion) ?? this.#rv
      this.#lastEvent = this.#now()
      this.#failures = 0
      this.#error = null
      received = true
      if (objects) this.#version++
      this.#o.onChange()
    }

    const onOpen = (): void => {
      // The stream is open: an earlier failure is over, and the watchdog starts counting.
      if (this.#error !== null) {
        this.#error = null
        this.#o.onChange()
      }
      this.#arm()
    }

    // The server's timeout is jittered up to twice watchTimeoutSeconds, so many watches do not end together.
    const timeoutSeconds = Math.round((this.#o.watchTimeoutSeconds ?? 300) * (1 + (this.#o.random ?? Math.random)()))
    const options = {
      path: this.#o.path,
      resourceVersion: this.#rv,
      timeoutSeconds,
      labelSelector: this.#o.labelSelector,
      inactivityMs: this.#o.watchInactivityMs ?? 90_000,
      signal: AbortSignal.any([signal, controller.signal]),
      onOpen,
    }
    let end: WatchEnd
    try {
      end = await watchStream(this.#kc, options, onEvent)
    } finally {
      this.#interrupt = undefined
      clearTimeout(this.#timer)
    }
    if (interrupted) return interrupted
    switch (end.kind) {
      case 'aborted':
      case 'inactive': // no data for watchInactivityMs: resume where we were
        return { kind: 'closed', quick: false }
      case 'closed': // the server's timeoutSeconds
        return { kind: 'closed', quick: !received && this.#now() - startedAt < 1000 }
      case 'failed':
        return end.code === 410 ? { kind: 'expired' } : { kind: 'error', error: new Error(`watch: ${end.message}`) }
    }
  }

  /** One timer per live watch, for the earlier of the watchdog and the periodic relist. */
  #arm(): void {
    clearTimeout(this.#timer)
    // Reconnects do not reset the watchdog: a server that accepts watches but sends nothing is its case.
    const watchdogAt = (): number => Math.max(this.#lastEvent ?? 0, this.#lastList ?? 0) + this.#watchdogMs
    const relistAt = (this.#lastList ?? this.#now()) + this.#relistMs
    this.#timer = setTimeout(() => {
      const now = this.#now()
      if (now >= relistAt) this.#interrupt?.({ kind: 'relist', why: 'periodic' })
      else if (now >= watchdogAt()) this.#interrupt?.({ kind: 'relist', why: 'watchdog' })
      else this.#arm()
    }, Math.max(1, Math.min(watchdogAt(), relistAt) - this.#now()))
    this.#timer.unref()
  }
}
