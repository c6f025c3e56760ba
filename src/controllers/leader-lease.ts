// Leader election on a coordination.k8s.io Lease, with client-go's leaderelection semantics:
// acquire a Lease that is absent, released, expired or already ours; renew it every retryPeriod;
// every write carries the resourceVersion it was based on, so of two racing writers one gets 409.
// Losing the Lease aborts the leader's AbortSignal before anything else happens, so leader-only
// work stops writing at once.
import { CoordinationV1Api, KubeConfig, type V1Lease } from '@kubernetes/client-node'
import { type Log, silentLog } from '../log.ts'
import { apiStatusCode, describeApiError } from './api-status.ts'
import { claimedLease, leaseDurationMs, leaseDurationSeconds, newLease, releasedLease } from './lease-record.ts'

export interface LeaderLeaseOptions {
  readonly api: CoordinationV1Api | KubeConfig
  readonly namespace: string
  readonly name: string
  /** Unique per replica, e.g. the pod name. */
  readonly identity: string
  /** How long others wait, after they last saw the Lease change, before taking it. Default 15 s. */
  readonly leaseDurationMs?: number
  /** How long the leader keeps trying to renew before it gives up leading. Default 10 s. */
  readonly renewDeadlineMs?: number
  /** Pause between attempts, as leader and as candidate. Default 2 s. */
  readonly retryPeriodMs?: number
  /** Starts the leader-only work; it must stop writing when `signal` aborts. A returned promise is awaited by stop() before the Lease is released. */
  readonly onStartedLeading: (signal: AbortSignal) => void | Promise<void>
  /** Called after the signal was aborted, each time leadership ends. */
  readonly onStoppedLeading?: () => void
  readonly log?: Pick<Log, 'debug' | 'info' | 'warn' | 'error'>
  /** Clock for Lease times and deadlines (tests). Timers still run on real time. */
  readonly now?: () => number
}

type Attempt = { readonly ok: true } | { readonly ok: false; readonly holder?: string }

/**
 * Leader election on the Lease `namespace`/`name` with client-go's semantics: `start` tries to acquire or
 * renew every `retryPeriodMs`; on winning it calls `onStartedLeading` with a signal that is aborted,
 * before anything else happens, when the Lease is lost, not renewed within `renewDeadlineMs` (a watchdog
 * on real time, even if a request hangs) or on `stop`. API errors are logged and retried, never thrown.
 * `stop` waits for the leader work, then releases the Lease (a failed release is only logged: it expires
 * by itself).
 */
export class LeaderLease {
  readonly #api: CoordinationV1Api
  readonly #namespace: string
  readonly #name: string
  readonly #identity: string
  readonly #leaseDurationMs: number
  readonly #renewDeadlineMs: number
  readonly #retryPeriodMs: number
  readonly #onStartedLeading: (signal: AbortSignal) => void | Promise<void>
  readonly #onStoppedLeading: () => void
  readonly #log: Pick<Log, 'debug' | 'info' | 'warn' | 'error'>
  readonly #now: () => number

  #leading = false
  #controller: AbortController | undefined
  #work: Promise<void> | undefined
  /** The Lease as last answered by the API server. */
  #latest: V1Lease | undefined
  // client-go measures expiry from when *we* saw the record change, not from its renewTime, so
  // clock skew between replicas cannot make a live Lease look expired.
  #observedSpec: string | undefined
  #observedAt = 0
  #renewedAt = 0
  // Set after losing the Lease: a Lease still naming us is then waited out like anyone else's,
  // since the replica that just failed to renew is the least likely to be healthy. A fresh
  // instance (a restart with the same identity) still resumes a Lease that names it.
  #yielded = false
  #watchdog: NodeJS.Timeout | undefined
  #loop: Promise<void> | undefined
  #sleepTimer: NodeJS.Timeout | undefined
  #wake: (() => void) | undefined
  #stopped = false
  #stopping: Promise<void> | undefined

  constructor(options: LeaderLeaseOptions) {
    this.#namespace = options.namespace
    this.#name = options.name
    this.#identity = options.identity
    this.#leaseDurationMs = options.leaseDurationMs ?? 15_000
    this.#renewDeadlineMs = options.renewDeadlineMs ?? 10_000
    this.#retryPeriodMs = options.retryPeriodMs ?? 2_000
    this.#onStartedLeading = options.onStartedLeading
    this.#onStoppedLeading = options.onStoppedLeading ?? (() => {})
    this.#log = options.log ?? silentLog
    this.#now = options.now ?? Date.now
    if (this.#identity === '') throw new Error('leader lease: identity must not be empty')
    // The leader must give up before anyone else may take over, and retry at least once meanwhile.
    if (!(this.#leaseDurationMs > this.#renewDeadlineMs && this.#renewDeadlineMs > this.#retryPeriodMs && this.#retryPeriodMs > 0)) {
      throw new Error('leader lease: need leaseDurationMs > renewDeadlineMs > retryPeriodMs > 0')
    }
    this.#api = options.api instanceof KubeConfig ? options.api.makeApiClient(CoordinationV1Api) : options.api
  }

  get isLeader(): boolean {
    return this.#leading
  }

  /** Who holds the Lease as last seen ('' when released, undefined before the first read). */
  get holderIdentity(): string | undefined {
    return this.#latest?.spec?.holderIdentity
  }

  start(): void {
    if (this.#loop || this.#stopped) return
    this.#loop = this.#run()
  }

  /** Stops leading (signal aborted first), waits for the leader work, then releases the Lease so another replica takes over at once. */
  stop(): Promise<void> {
    this.#stopping ??= this.#shutdown()
    return this.#stopping
  }

  async #shutdown(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#sleepTimer)
    this.#wake?.()
    const wasLeading = this.#abortLeading()
    await this.#loop
    await this.#work
    try {
      await this.#release()
    } catch (error) {
      this.#log.warn({ lease: this.#name, err: error, reason: describeApiError(error) }, 'could not release the leader lease; it expires on its own')
    }
    if (wasLeading) this.#stoppedLeading()
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      let attempt: Attempt
      try {
        attempt = await this.#tryAcquireOrRenew()
      } catch (error) {
        this.#log.debug({ lease: this.#name, err: error, reason: describeApiError(error) }, 'leader lease attempt failed')
        attempt = { ok: false }
      }
      if (this.#stopped) break
      if (attempt.ok) this.#succeeded()
      else if (this.#leading) this.#failedWhileLeading(attempt.holder)
      await this.#sleep(this.#retryPeriodMs)
    }
  }

  #succeeded(): void {
    this.#yielded = false
    this.#renewedAt = this.#now()
    this.#armWatchdog()
    if (this.#leading) return
    this.#leading = true
    const controller = new AbortController()
    this.#controller = controller
    this.#log.info({ lease: this.#name, identity: this.#identity }, 'became leader')
    try {
      const work = this.#onStartedLeading(controller.signal)
      if (work instanceof Promise) {
        this.#work = work.catch((error: unknown) => this.#log.error({ err: error }, 'leader work failed'))
      }
    } catch (error) {
      this.#log.error({ err: error }, 'leader work failed to start')
    }
  }

  #failedWhileLeading(otherHolder: string | undefined): void {
    if (otherHolder !== undefined) return this.#lose(`the lease is held by ${otherHolder}`)
    if (this.#now() - this.#renewedAt >= this.#renewDeadlineMs) this.#lose('could not renew the lease before the renew deadline')
  }

  // Also covers a renew request that hangs: real time runs out even when no attempt returns.
  #armWatchdog(): void {
    clearTimeout(this.#watchdog)
    this.#watchdog = setTimeout(() => this.#lose('no successful renewal within the renew deadline'), this.#renewDeadlineMs)
  }

  #lose(reason: string): void {
    if (!this.#abortLeading(reason)) return
    this.#yielded = true
    this.#log.warn({ lease: this.#name, identity: this.#identity, reason }, 'stopped leading')
    this.#stoppedLeading()
  }

  /** Synchronously ends leadership: the signal is aborted before anything else. Returns whether we were leading. */
  #abortLeading(reason = 'stopping'): boolean {
    if (!this.#leading) return false
    this.#leading = false
    this.#controller?.abort(new Error(`leadership lost: ${reason}`))
    this.#controller = undefined
    clearTimeout(this.#watchdog)
    return true
  }

  #stoppedLeading(): void {
    try {
      this.#onStoppedLeading()
    } catch (error) {
      this.#log.error({ err: error }, 'onStoppedLeading threw')
    }
  }

  async #tryAcquireOrRenew(): Promise<Attempt> {
    const now = this.#now()
    // Fast path (as client-go): the leader renews from its own last write, without a read.
    const mine = this.#latest
    if (this.#leading && mine?.spec?.holderIdentity === this.#identity) {
      try {
        this.#latest = await this.#claim(mine, now)
        this.#observe(this.#latest, now)
        return { ok: true }
      } catch (error) {
        if (apiStatusCode(error) !== 409) throw error
      }
    }

    let current: V1Lease
    try {
      current = await this.#api.readNamespacedLease({ namespace: this.#namespace, name: this.#name })
    } catch (error) {
      if (apiStatusCode(error) !== 404) throw error
      return this.#create(now)
    }
    this.#latest = current
    this.#observe(current, now)
    const holder = current.spec?.holderIdentity ?? ''
    const foreign = holder !== '' && (holder !== this.#identity || this.#yielded)
    if (foreign && !this.#expired(current, now)) return { ok: false, holder }
    try {
      this.#latest = await this.#claim(current, now)
      this.#observe(this.#latest, now)
      return { ok: true }
    } catch (error) {
      if (apiStatusCode(error) === 409) return { ok: false } // another candidate won the race
      throw error
    }
  }

  async #create(now: number): Promise<Attempt> {
    const body = newLease(this.#namespace, this.#name, this.#identity, leaseDurationSeconds(this.#leaseDurationMs), now)
    try {
      this.#latest = await this.#api.createNamespacedLease({ namespace: this.#namespace, body })
      this.#observe(this.#latest, now)
      return { ok: true }
    } catch (error) {
      if (apiStatusCode(error) === 409) return { ok: false } // AlreadyExists: someone else created it first
      throw error
    }
  }

  #claim(current: V1Lease, now: number): Promise<V1Lease> {
    const body = claimedLease(current, this.#identity, leaseDurationSeconds(this.#leaseDurationMs), now)
    return this.#api.replaceNamespacedLease({ namespace: this.#namespace, name: this.#name, body })
  }

  #observe(lease: V1Lease, now: number): void {
    const spec = JSON.stringify(lease.spec ?? {})
    if (spec === this.#observedSpec) return
    this.#observedSpec = spec
    this.#observedAt = now
  }

  #expired(lease: V1Lease, now: number): boolean {
    return this.#observedAt + leaseDurationMs(lease, this.#leaseDurationMs) <= now
  }

  async #release(): Promise<void> {
    const latest = this.#latest
    if (latest?.spec?.holderIdentity !== this.#identity) return
    const body = releasedLease(latest, this.#now())
    try {
      this.#latest = await this.#api.replaceNamespacedLease({ namespace: this.#namespace, name: this.#name, body })
      this.#log.info({ lease: this.#name, identity: this.#identity }, 'released the leader lease')
    } catch (error) {
      // 409: someone else wrote it since our last renewal, so it is no longer ours to release.
      if (apiStatusCode(error) !== 409) throw error
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve
      this.#sleepTimer = setTimeout(resolve, ms)
    })
  }
}
