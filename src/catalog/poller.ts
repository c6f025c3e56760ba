// Polls every catalog source on its own schedule and publishes a new immutable CatalogState
// after every attempt. A failed poll keeps that source's last known entries (their age is
// visible through lastSuccess) and retries with jittered exponential backoff.
import { isDeepStrictEqual } from 'node:util'
import { buildCatalogState, type CatalogState, type SourceState } from '../state/catalog-state.ts'
import type { CatalogSource } from './source.ts'

export interface PollerLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

export interface PollObserver {
  /** Called after every poll attempt (metrics). */
  polled(source: SourceState, durationSeconds: number, ok: boolean): void
}

export interface PollerOptions {
  readonly intervalMs: number
  /** Upper bound of the backoff after failures. */
  readonly maxBackoffMs?: number
  readonly timeoutMs?: number
  readonly now?: () => number
  readonly random?: () => number
  readonly log: PollerLogger
  readonly observer?: PollObserver
}

function initialState(source: CatalogSource): SourceState {
  return { name: source.name, type: source.type, lastSuccess: null, lastAttempt: null, error: null, entries: [], diagnostics: [], repositories: [] }
}

export class CatalogPoller {
  readonly #sources: readonly CatalogSource[]
  readonly #options: PollerOptions
  readonly #publish: (catalog: CatalogState) => void
  readonly #states: SourceState[]
  readonly #failures: number[]
  readonly #timers = new Set<NodeJS.Timeout>()
  readonly #abort = new AbortController()
  #firstRound: Promise<void> | undefined
  #published: CatalogState | undefined

  constructor(sources: readonly CatalogSource[], publish: (catalog: CatalogState) => void, options: PollerOptions) {
    this.#sources = sources
    this.#publish = publish
    this.#options = options
    this.#states = sources.map(initialState)
    this.#failures = sources.map(() => 0)
  }

  get states(): readonly SourceState[] {
    return this.#states
  }

  /** True once every source has been polled at least once (success or failure). */
  get firstPollDone(): boolean {
    return this.#states.every((s) => s.lastAttempt !== null)
  }

  /** Polls every source once now; the promise settles when all attempts finished. */
  pollAll(): Promise<void> {
    return Promise.all(this.#sources.map((_, i) => this.#pollOne(i))).then(() => undefined)
  }

  /** First round now, then each source on its own timer. Resolves after the first round. */
  start(): Promise<void> {
    this.#firstRound ??= Promise.all(this.#sources.map((_, i) => this.#pollOne(i).then(() => this.#schedule(i)))).then(() => undefined)
    return this.#firstRound
  }

  stop(): void {
    this.#abort.abort()
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
  }

  #delay(i: number): number {
    const { intervalMs, maxBackoffMs = 10 * 60_000, random = Math.random } = this.#options
    const failures = this.#failures[i] ?? 0
    const base = failures === 0 ? intervalMs : Math.min(maxBackoffMs, Math.min(intervalMs, 5000) * 2 ** (failures - 1))
    // +-20% so that many replicas and sources do not poll in lockstep.
    return Math.round(base * (0.8 + 0.4 * random()))
  }

  #schedule(i: number): void {
    if (this.#abort.signal.aborted) return
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      void this.#pollOne(i).then(() => this.#schedule(i))
    }, this.#delay(i))
    timer.unref()
    this.#timers.add(timer)
  }

  async #pollOne(i: number): Promise<void> {
    const source = this.#sources[i]!
    const previous = this.#states[i]!
    const now = this.#options.now ?? Date.now
    const started = performance.now()
    const timeoutMs = this.#options.timeoutMs ?? 120_000
    const attempt = new AbortController()
    const onStop = () => attempt.abort(new Error('poller stopped'))
    this.#abort.signal.addEventListener('abort', onStop)
    let timer: NodeJS.Timeout | undefined
    // Raced, not only signalled: a source that ignores its signal still cannot hang the poller.
    // The timer is ref'd on purpose so a one-shot `catalog` run waits for the timeout.
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new Error(`poll of source ${source.name} timed out after ${timeoutMs} ms`)
        attempt.abort(error)
        reject(error)
      }, timeoutMs)
    })
    let next: SourceState
    let ok: boolean
    try {
      const found = await Promise.race([source.poll(attempt.signal), timeout])
      const at = now()
      // Unchanged results keep their identity, so the catalog below is not rebuilt for them.
      const entries = isDeepStrictEqual(found.entries, previous.entries) ? previous.entries : Object.freeze([...found.entries])
      const diagnostics = isDeepStrictEqual(found.diagnostics ?? [], previous.diagnostics) ? previous.diagnostics : Object.freeze([...(found.diagnostics ?? [])])
      // Opened repositories are the same objects from poll to poll while they stay open.
      const repositories = isDeepStrictEqual(found.repositories ?? [], previous.repositories) ? previous.repositories : Object.freeze([...(found.repositories ?? [])])
      next = { ...previous, lastSuccess: at, lastAttempt: at, error: null, entries, diagnostics, repositories }
      this.#failures[i] = 0
      ok = true
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error)
      next = { ...previous, lastAttempt: now(), error: message }
      this.#failures[i] = (this.#failures[i] ?? 0) + 1
      ok = false
      this.#options.log.warn({ source: source.name, err: message, failures: this.#failures[i], lastSuccess: previous.lastSuccess }, 'catalog poll failed; keeping the last known entries')
    } finally {
      clearTimeout(timer)
      this.#abort.signal.removeEventListener('abort', onStop)
    }
    // A stopped poller (replaced after a config reload) must not overwrite its successor's catalog.
    if (this.#abort.signal.aborted) return
    this.#states[i] = Object.freeze(next)
    this.#options.observer?.polled(next, (performance.now() - started) / 1000, ok)
    this.#publish(this.#catalog())
  }

  /**
   * Published after every attempt, because admission judges staleness by lastSuccess; the index
   * by PVC is rebuilt and the revision bumped only when some source's entries or diagnostics changed.
   */
  #catalog(): CatalogState {
    const sources = [...this.#states]
    const last = this.#published
    const unchanged = last !== undefined && last.sources.length === sources.length &&
      sources.every((s, i) => s.entries === last.sources[i]!.entries && s.diagnostics === last.sources[i]!.diagnostics && s.repositories === last.sources[i]!.repositories)
    this.#published = unchanged ? { ...last, sources } : buildCatalogState(sources, (last?.revision ?? 0) + 1)
    return this.#published
  }
}
