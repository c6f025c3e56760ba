// Polls every catalog source on its own schedule and publishes a new immutable CatalogState
// after every attempt. A failed poll keeps that source's last known entries (their age is
// visible through lastSuccess) and retries with jittered exponential backoff. A new config
// replaces the source list without forgetting: an unchanged source keeps its state and its
// schedule, a changed one keeps its last known entries until its next poll answers. A source may
// publish between polls through the Refinement its poll is given (exact figures read after a listing).
import { isDeepStrictEqual } from 'node:util'
import { errorMessage } from '../errors.ts'
import { MAX_TIMER_MS } from '../config/duration.ts'
import type { Log } from '../log.ts'
import { buildCatalogState, type CatalogState, type SourcePoll, type SourceState } from '../state/catalog-state.ts'
import type { CatalogSource } from './source.ts'
import { untilAborted } from '../loop.ts'

export interface PollObserver {
  /** Called after every poll attempt (metrics). */
  polled(source: SourceState, durationSeconds: number, ok: boolean): void
}

export interface PollerOptions {
  readonly intervalMs: number
  /** Upper bound of the backoff after failures. Default 10 min. */
  readonly maxBackoffMs?: number
  /** One poll of one source; default 120 s. */
  readonly timeoutMs?: number
  readonly now?: () => number
  readonly random?: () => number
  readonly log: Pick<Log, 'info' | 'warn'>
  readonly observer?: PollObserver
  /**
   * Give each poll a Refinement (see CatalogSource.poll), so a source can answer from its listing and
   * publish exact figures later (the server). Default true; false for one-shot commands, whose polls
   * then read everything before answering.
   */
  readonly refine?: boolean
}

/**
 * The pause before a source's next poll, in ms: `intervalMs` after a success; after `failures`
 * consecutive failures, exponential from min(interval, 5 s) up to `maxBackoffMs` (never longer
 * than that, even when the interval is). Always +-20% (`random` in [0, 1)), so replicas and
 * sources do not poll in lockstep. Pure.
 */
export function pollDelayMs(failures: number, intervalMs: number, maxBackoffMs: number, random: number): number {
  const base = failures === 0 ? intervalMs : Math.min(maxBackoffMs, Math.min(intervalMs, 5000) * 2 ** Math.min(failures - 1, 30))
  // The jitter may take a long interval past a timer's limit, where it would fire after 1 ms.
  return Math.min(MAX_TIMER_MS, Math.round(base * (0.8 + 0.4 * random)))
}

/** A poll's results, each keeping the previous state's identity when deep-equal, so the catalog is not rebuilt for them. */
function keepUnchanged(previous: SourceState, found: SourcePoll): Pick<SourceState, 'entries' | 'diagnostics' | 'repositories'> {
  return {
    entries: isDeepStrictEqual(found.entries, previous.entries) ? previous.entries : Object.freeze([...found.entries]),
    diagnostics: isDeepStrictEqual(found.diagnostics ?? [], previous.diagnostics) ? previous.diagnostics : Object.freeze([...(found.diagnostics ?? [])]),
    repositories: isDeepStrictEqual(found.repositories ?? [], previous.repositories) ? previous.repositories : Object.freeze([...(found.repositories ?? [])]),
  }
}

function initialState(source: CatalogSource): SourceState {
  return { name: source.name, type: source.type, lastSuccess: null, lastAttempt: null, error: null, entries: [], diagnostics: [], repositories: [] }
}

/** One source and what the poller keeps for it. Replaced whole by reconfigure, never edited in place from outside. */
interface Slot {
  readonly source: CatalogSource
  state: SourceState
  failures: number
  timer: NodeJS.Timeout | undefined
  /** Aborted when the slot is dropped or replaced: its poll in flight must not publish. */
  readonly retired: AbortController
}

/**
 * Polls the catalog sources (each on its own timer, `intervalMs` apart, backing off after failures; one
 * poll is cut at `timeoutMs`, default 120 s) and hands `publish` a new CatalogState (its sources frozen) after every
 * attempt. A failure keeps the source's last entries and is logged at warn with `{ err }`. Starts nothing
 * until `run` or `pollAll`; the schedule's timers are unref'd, a poll's timeout is not.
 */
export class CatalogPoller {
  readonly #publish: (catalog: CatalogState) => void
  readonly #options: PollerOptions
  readonly #abort = new AbortController()
  #intervalMs: number
  #slots: Slot[]
  #running = false
  #firstRoundDone = false
  #published: CatalogState | undefined

  /** `sources` may carry the `config` they were made from (see CatalogSource.config), for reconfigure. */
  constructor(sources: readonly CatalogSource[], publish: (catalog: CatalogState) => void, options: PollerOptions) {
    this.#publish = publish
    this.#options = options
    this.#intervalMs = options.intervalMs
    this.#slots = sources.map((source) => this.#slot(source, initialState(source)))
  }

  /** Each source's latest state, in config order. */
  get states(): readonly SourceState[] {
    return this.#slots.map((s) => s.state)
  }

  /**
   * True once the first round (every source polled once, success or failure) has finished since
   * this poller started; never reset by a reconfigure, so a reload cannot make a replica unready.
   */
  get firstPollDone(): boolean {
    return this.#firstRoundDone || this.#slots.every((s) => s.state.lastAttempt !== null)
  }

  /** Polls every source once now; the promise settles when all attempts finished. */
  pollAll(): Promise<void> {
    return Promise.all(this.#slots.map((slot) => this.#pollOne(slot))).then(() => undefined)
  }

  /** First round now, then each source on its own timer, until `signal` aborts (Loop.run). */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#running || this.#abort.signal.aborted) return
    this.#running = true
    const stopped = untilAborted(signal)
    void stopped.then(() => this.stop())
    const round = this.#slots.map((slot) => this.#pollOne(slot).then(() => this.#schedule(slot)))
    await Promise.race([Promise.all(round), stopped])
    this.#firstRoundDone = true
    await stopped
  }

  /** Stops every timer; a poll still in flight is aborted and publishes nothing. */
  stop(): void {
    this.#abort.abort()
    for (const slot of this.#slots) clearTimeout(slot.timer)
  }

  /**
   * Replaces the source list (matched by name). A source whose `config` is deep-equal to the
   * running one's (or the very same object) keeps its state, schedule and opened repositories.
   * A changed source keeps its last known entries and times, so nothing known turns "unknown",
   * and is polled at once. A new source is polled at once; a removed one is dropped. A new
   * interval applies from each source's next schedule.
   */
  reconfigure(sources: readonly CatalogSource[], intervalMs: number): void {
    const intervalChanged = intervalMs !== this.#intervalMs
    this.#intervalMs = intervalMs
    const previous = new Map(this.#slots.map((slot) => [slot.source.name, slot]))
    const next: Slot[] = []
    const fresh: Slot[] = []
    for (const source of sources) {
      const old = previous.get(source.name)
      previous.delete(source.name)
      const unchanged = old !== undefined && (old.source === source || (old.source.config !== undefined && isDeepStrictEqual(old.source.config, source.config)))
      if (old && unchanged) {
        next.push(old)
        continue
      }
      if (old) this.#retire(old)
      const slot = this.#slot(source, old ? { ...old.state, name: source.name, type: source.type } : initialState(source))
      next.push(slot)
      fresh.push(slot)
    }
    for (const dropped of previous.values()) this.#retire(dropped)
    this.#slots = next
    if (!this.#running || this.#abort.signal.aborted) return
    for (const slot of fresh) void this.#pollOne(slot).then(() => this.#schedule(slot))
    if (intervalChanged) for (const slot of next) if (!fresh.includes(slot) && slot.timer !== undefined) this.#schedule(slot)
    // A dropped source's entries must leave the catalog now, not at the next poll of another.
    if (previous.size > 0 || fresh.length > 0) this.#publish(this.#catalog())
  }

  #slot(source: CatalogSource, state: SourceState): Slot {
    return { source, state: Object.freeze(state), failures: 0, timer: undefined, retired: new AbortController() }
  }

  #retire(slot: Slot): void {
    clearTimeout(slot.timer)
    slot.retired.abort(new Error(`source ${slot.source.name} was reconfigured`))
  }

  #live(slot: Slot): boolean {
    return !this.#abort.signal.aborted && !slot.retired.signal.aborted
  }

  #schedule(slot: Slot): void {
    clearTimeout(slot.timer)
    if (!this.#live(slot)) return
    const delay = pollDelayMs(slot.failures, this.#intervalMs, this.#options.maxBackoffMs ?? 10 * 60_000, (this.#options.random ?? Math.random)())
    slot.timer = setTimeout(() => {
      slot.timer = undefined
      void this.#pollOne(slot).then(() => this.#schedule(slot))
    }, delay)
    slot.timer.unref()
  }

  async #pollOne(slot: Slot): Promise<void> {
    const { source } = slot
    const previous = slot.state
    const now = this.#options.now ?? Date.now
    const started = performance.now()
    const timeoutMs = this.#options.timeoutMs ?? 120_000
    const attempt = new AbortController()
    const stopping = AbortSignal.any([this.#abort.signal, slot.retired.signal])
    const onStop = () => attempt.abort(new Error('catalog poller stopped'))
    stopping.addEventListener('abort', onStop)
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
      const refinement = (this.#options.refine ?? true) ? { signal: stopping, publish: (later: SourcePoll) => this.#refined(slot, later) } : undefined
      const found = await Promise.race([source.poll(attempt.signal, refinement), timeout])
      const at = now()
      next = { ...previous, lastSuccess: at, lastAttempt: at, error: null, ...keepUnchanged(previous, found) }
      slot.failures = 0
      ok = true
    } catch (err) {
      const message = errorMessage(err)
      next = { ...previous, lastAttempt: now(), error: message }
      slot.failures++
      ok = false
      if (!stopping.aborted) this.#options.log.warn({ source: source.name, err, failures: slot.failures, lastSuccess: previous.lastSuccess }, 'catalog poll failed; keeping the last known entries')
    } finally {
      clearTimeout(timer)
      stopping.removeEventListener('abort', onStop)
    }
    // A stopped poller, or a source replaced by a reload, must not overwrite what replaced it.
    if (!this.#live(slot)) return
    slot.state = Object.freeze(next)
    this.#options.observer?.polled(slot.state, (performance.now() - started) / 1000, ok)
    this.#publish(this.#catalog())
  }

  /** A source's refinement after its poll answered: its results replaced, its times and schedule kept. */
  #refined(slot: Slot, found: SourcePoll): void {
    if (!this.#live(slot) || slot.state.lastSuccess === null) return
    const results = keepUnchanged(slot.state, found)
    const state = slot.state
    if (results.entries === state.entries && results.diagnostics === state.diagnostics && results.repositories === state.repositories) return
    slot.state = Object.freeze({ ...state, ...results })
    this.#publish(this.#catalog())
  }

  /**
   * Published after every attempt, because admission judges staleness by lastSuccess; the index
   * by PVC is rebuilt and the revision bumped only when some source's entries or diagnostics changed.
   */
  #catalog(): CatalogState {
    const sources = this.#slots.map((s) => s.state)
    const last = this.#published
    const unchanged = last !== undefined && last.sources.length === sources.length &&
      sources.every((s, i) => s.name === last.sources[i]!.name && s.entries === last.sources[i]!.entries && s.diagnostics === last.sources[i]!.diagnostics && s.repositories === last.sources[i]!.repositories)
    this.#published = unchanged ? { ...last, sources } : buildCatalogState(sources, (last?.revision ?? 0) + 1)
    return this.#published
  }
}
