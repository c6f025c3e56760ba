// Checks Kopia passwords that admission asked about (KopiaPasswordCheckNudge) against the
// repositories the catalog opened, a few at a time, and publishes the verdicts into the snapshot
// (`passwordVerdicts`) for the pure kopiaPassword rule to read. Anyone who can write Secrets can
// send passwords here, so the work is bounded: MAX_IN_FLIGHT derivations at once, MAX_PENDING
// waiting (the oldest dropped first), duplicates ignored, results capped per repository.
import { checkPassword } from '../kopia/password-check.ts'
import type { Log } from '../log.ts'
import type { KopiaFormatData, OpenedRepository } from '../state/catalog-state.ts'
import { EMPTY_PASSWORD_VERDICTS, passwordDigest, type PasswordVerdict, type PasswordVerdicts } from '../state/password-verdicts.ts'
import type { Snapshot } from '../state/snapshot.ts'
import type { StateStore } from '../state/store.ts'
import { formatBlobOf } from './opened-kopia.ts'

/**
 * Derivations running at once. Each is a 64 MiB, ~250 ms scrypt (or a 600k-round pbkdf2) on
 * libuv's thread pool, which has 4 threads (UV_THREADPOOL_SIZE) shared with every fs call (the
 * directory blob store, config and certificate watching), the catalog's own key derivations and
 * dns.lookup. One leaves the rest of the pool free and caps the extra memory at 64 MiB.
 */
export const MAX_IN_FLIGHT = 1

/**
 * The share of one core the checks may use on average. A derivation is pure CPU: on a 2-core
 * node (or a pod limited to one core) two derivations back to back took a core from the event
 * loop and doubled /mutate's p99 during a Secret flood (npm run bench:flood). After a check that
 * took d ms, the next one starts d * (1 / DUTY_CYCLE - 1) ms later: ~1 check a second.
 */
export const DUTY_CYCLE = 0.2

/**
 * Requests waiting for a slot. At ~1 check a second, 64 drain in about a minute. A flood pushes the
 * oldest out: a dropped request costs nothing lasting, since the Secret's next admission (or
 * kubectl's retry) nudges again, while the newest requests are the ones someone is waiting on.
 */
export const MAX_PENDING = 64

/** One check: a repository's OpenedRepository.id and the password (KopiaPasswordCheckNudge has this shape). */
export interface PasswordCheckRequest {
  readonly repository: string
  readonly password: string
}

/**
 * Checks a password against a format blob: 'opens', 'wrong', or 'unknown' (it cannot tell, e.g.
 * an unsupported key algorithm). Rejects when the derivation fails or `signal` aborts.
 * Injectable so tests can count what runs at once.
 */
export type PasswordCheck = (format: KopiaFormatData, password: string, signal: AbortSignal) => Promise<PasswordVerdict>

/** Off-thread key derivation (key-derivation.ts, cached) and the format box (format-blob.ts). */
export const checkAgainstFormat: PasswordCheck = (format, password, signal) => checkPassword(formatBlobOf(format), password, signal)

/** Monotonic counters (for a metric) and the current queue sizes. */
export interface PasswordVerdictCounts {
  /** Requests queued for a check. */
  readonly accepted: number
  /** Queued requests pushed out by newer ones before they ran. */
  readonly dropped: number
  /** Requests ignored: already pending, running or answered. */
  readonly duplicates: number
  /** Requests ignored: no repository with that id in the catalog (it went away). */
  readonly unknownRepository: number
  /** Checks that finished with a verdict (or 'unknown', which is not recorded). */
  readonly completed: number
  /** Checks whose derivation failed (logged). */
  readonly failed: number
  readonly inFlight: number
  readonly pending: number
}

/** What `request` did with a request. */
export type RequestOutcome = 'accepted' | 'duplicate' | 'unknown-repository' | 'closed'

export interface PasswordVerdictQueueOptions {
  /** Called (synchronously) whenever `verdicts` changed; publish them from here. */
  readonly onChange: (verdicts: PasswordVerdicts) => void
  readonly check?: PasswordCheck
  readonly maxInFlight?: number
  readonly maxPending?: number
  /** Default DUTY_CYCLE; 1 runs checks back to back (tests). */
  readonly dutyCycle?: number
  /** Clock in ms (tests); default performance.now. */
  readonly now?: () => number
  /** Check failures are logged as `{ err, repository }` (never a password). */
  readonly log?: Pick<Log, 'warn'>
  /** Called once by `close`. */
  readonly onClose?: () => void
}

interface Pending {
  readonly key: string
  readonly repository: OpenedRepository
  readonly digest: string
  readonly password: string
}

/**
 * The bounded check queue and the immutable verdict map it builds. Learns the repositories from
 * `setRepositories` (the catalog's opened ones); each one's own password (the catalog opened it
 * with it) is 'opens' at once, without a derivation.
 */
export class PasswordVerdictQueue {
  readonly #options: PasswordVerdictQueueOptions
  readonly #check: PasswordCheck
  readonly #maxInFlight: number
  readonly #maxPending: number
  readonly #abort = new AbortController()
  #repositories = new Map<string, OpenedRepository>()
  #verdicts: PasswordVerdicts = EMPTY_PASSWORD_VERDICTS
  #pending: Pending[] = []
  /** Keys (`repository/digest`) pending or running. */
  readonly #queued = new Set<string>()
  #inFlight = 0
  /** No check starts before this time (ms, on `now`): the pause the duty cycle asks for. */
  #resumeAt = 0
  #resumeTimer: NodeJS.Timeout | undefined
  #idle: Array<() => void> = []
  #closed = false
  #counts = { accepted: 0, dropped: 0, duplicates: 0, unknownRepository: 0, completed: 0, failed: 0 }

  constructor(options: PasswordVerdictQueueOptions) {
    this.#options = options
    this.#check = options.check ?? checkAgainstFormat
    this.#maxInFlight = options.maxInFlight ?? MAX_IN_FLIGHT
    this.#maxPending = options.maxPending ?? MAX_PENDING
  }

  /** The current verdicts: a new immutable instance after every change. */
  get verdicts(): PasswordVerdicts {
    return this.#verdicts
  }

  get counts(): PasswordVerdictCounts {
    return { ...this.#counts, inFlight: this.#inFlight, pending: this.#pending.length }
  }

  get closed(): boolean {
    return this.#closed
  }

  /**
   * The repositories the catalog holds open now (every source's `repositories`). Verdicts and
   * pending requests of repositories no longer among them are dropped; each one's own password is
   * recorded as 'opens'.
   */
  setRepositories(repositories: Iterable<OpenedRepository>): void {
    if (this.#closed) return
    this.#repositories = new Map([...repositories].map((repository) => [repository.id, repository]))
    const kept = this.#pending.filter((p) => this.#repositories.has(p.repository.id))
    for (const gone of this.#pending.filter((p) => !this.#repositories.has(p.repository.id))) this.#queued.delete(gone.key)
    this.#pending = kept
    const own = [...this.#repositories.values()].map((r) => ({ repository: r.id, digest: r.openedWithDigest, verdict: 'opens' as const }))
    this.#setVerdicts(this.#verdicts.retainOnly(new Set(this.#repositories.keys())).withMany(own))
    this.#notifyIfIdle()
  }

  /** Queues a check of `password` against repository `id`; never blocks, never throws. */
  request(request: PasswordCheckRequest): RequestOutcome {
    if (this.#closed) return 'closed'
    const repository = this.#repositories.get(request.repository)
    if (repository === undefined) {
      this.#counts.unknownRepository++
      return 'unknown-repository'
    }
    const digest = passwordDigest(request.password)
    const key = `${repository.id}/${digest}`
    if (this.#queued.has(key) || this.#verdicts.verdictOf(repository.id, digest) !== 'unknown') {
      this.#counts.duplicates++
      return 'duplicate'
    }
    this.#counts.accepted++
    this.#queued.add(key)
    this.#pending.push({ key, repository, digest, password: request.password })
    while (this.#pending.length > this.#maxPending) {
      const oldest = this.#pending.shift()!
      this.#queued.delete(oldest.key)
      this.#counts.dropped++
    }
    this.#pump()
    return 'accepted'
  }

  /** Resolves once nothing is pending or running (now, if so already). */
  idle(): Promise<void> {
    if (this.#inFlight === 0 && this.#pending.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  /** Drops pending requests and stops waiting for running ones (their derivations finish unobserved). */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#pending = []
    this.#queued.clear()
    clearTimeout(this.#resumeTimer)
    this.#abort.abort(new Error('password verdict queue closed'))
    this.#options.onClose?.()
    this.#notifyIfIdle()
  }

  #pump(): void {
    if (this.#resumeTimer !== undefined) return
    const wait = this.#resumeAt - this.#now()
    if (wait > 0 && !this.#closed && this.#pending.length > 0) {
      this.#resumeTimer = setTimeout(() => {
        this.#resumeTimer = undefined
        this.#pump()
      }, wait)
      this.#resumeTimer.unref()
      return
    }
    while (!this.#closed && this.#inFlight < this.#maxInFlight && this.#pending.length > 0) this.#run(this.#pending.shift()!)
  }

  #now(): number {
    return (this.#options.now ?? performance.now.bind(performance))()
  }

  #run(item: Pending): void {
    this.#inFlight++
    const started = this.#now()
    let checking: Promise<PasswordVerdict>
    try {
      checking = this.#check(item.repository.format, item.password, this.#abort.signal)
    } catch (error) {
      checking = Promise.reject(error)
    }
    checking.then(
      (verdict) => {
        if (this.#closed) return
        this.#counts.completed++
        // A repository that left the catalog meanwhile gets no verdict (a password change gives a new id).
        if (verdict !== 'unknown' && this.#repositories.has(item.repository.id)) {
          this.#setVerdicts(this.#verdicts.with(item.repository.id, item.digest, verdict))
        }
      },
      (error: unknown) => {
        if (this.#closed) return
        this.#counts.failed++
        this.#options.log?.warn({ err: error, repository: item.repository.location }, 'checking a Kopia password for admission failed')
      },
    ).finally(() => {
      const duty = this.#options.dutyCycle ?? DUTY_CYCLE
      if (duty < 1) this.#resumeAt = Math.max(this.#resumeAt, this.#now() + (this.#now() - started) * (1 / duty - 1))
      this.#inFlight--
      this.#queued.delete(item.key)
      this.#pump()
      this.#notifyIfIdle()
    })
  }

  #setVerdicts(next: PasswordVerdicts): void {
    if (next === this.#verdicts) return
    this.#verdicts = next
    this.#options.onChange(next)
  }

  #notifyIfIdle(): void {
    if (this.#inFlight > 0 || (this.#pending.length > 0 && !this.#closed)) return
    const waiting = this.#idle
    this.#idle = []
    for (const resolve of waiting) resolve()
  }
}

/** Every Kopia repository the catalog holds open in this snapshot. */
export function openedRepositoriesOf(snapshot: Snapshot): OpenedRepository[] {
  return snapshot.catalog.sources.flatMap((source) => source.repositories)
}

/**
 * Wires a queue to the store: it follows the catalog's opened repositories and publishes its
 * verdicts as the snapshot's `passwordVerdicts` (in a microtask, never from inside another
 * publish's listeners, coalesced). Route KopiaPasswordCheckNudges to `request`; `close` stops it
 * and unsubscribes.
 */
export function startPasswordVerdicts(store: StateStore, options: Omit<PasswordVerdictQueueOptions, 'onChange' | 'onClose'> = {}): PasswordVerdictQueue {
  let scheduled = false
  const publish = () => {
    if (scheduled) return
    scheduled = true
    queueMicrotask(() => {
      scheduled = false
      if (!queue.closed && store.current.passwordVerdicts !== queue.verdicts) store.publish({ passwordVerdicts: queue.verdicts })
    })
  }
  const unsubscribe = store.subscribe((next, previous) => {
    if (next.catalog !== previous.catalog) queue.setRepositories(openedRepositoriesOf(next))
  })
  const queue: PasswordVerdictQueue = new PasswordVerdictQueue({ ...options, onChange: publish, onClose: unsubscribe })
  queue.setRepositories(openedRepositoriesOf(store.current))
  return queue
}
