// The pre-warm controller (leader only): applies planPrewarm to the cluster. It runs on every
// tick while leading and at once for a PVC whose admission decided `wait` (a nudge). Writes stop
// the moment leadership is lost: the leader's AbortSignal is checked before every write.
import type { Snapshot } from '../state/snapshot.ts'
import type { KubeWrites } from './kube-writes.ts'
import { planPrewarm, type PrewarmAction } from './prewarm-plan.ts'

export interface PrewarmLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

export interface PrewarmOptions {
  readonly writes: KubeWrites
  readonly readSnapshot: () => Snapshot
  readonly log: PrewarmLogger
  /** How often a leader re-plans (default 15 s). */
  readonly intervalMs?: number
  /** A finished RD that still has no image is re-triggered at most this often (default 10 min). */
  readonly retriggerAfterMs?: number
  readonly now?: () => number
  readonly onAction?: (action: PrewarmAction, ok: boolean) => void
}

export class PrewarmController {
  readonly #options: PrewarmOptions
  #leading: AbortSignal | undefined
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> = Promise.resolve()
  /** namespace/name -> when we last created or triggered it; the cluster state lags behind our writes. */
  readonly #recent = new Map<string, number>()

  constructor(options: PrewarmOptions) {
    this.#options = options
  }

  get leading(): boolean {
    return this.#leading !== undefined && !this.#leading.aborted
  }

  /** Runs until `signal` aborts (leadership lost or shutdown). */
  lead(signal: AbortSignal): void {
    this.#leading = signal
    const tick = () => {
      if (signal.aborted) return
      void this.run().finally(() => {
        if (!signal.aborted) this.#timer = setTimeout(tick, this.#options.intervalMs ?? 15_000).unref()
      })
    }
    signal.addEventListener('abort', () => clearTimeout(this.#timer), { once: true })
    tick()
  }

  /** A `wait` decision: plan for this PVC now instead of at the next tick. */
  nudge(namespace: string, pvc: string): void {
    if (this.leading) void this.run({ namespace, pvc })
  }

  /** One pass; passes never overlap. */
  run(only?: { namespace: string; pvc: string }): Promise<void> {
    this.#running = this.#running.then(() => this.#pass(only), () => this.#pass(only))
    return this.#running
  }

  async #pass(only: { namespace: string; pvc: string } | undefined): Promise<void> {
    const now = this.#options.now?.() ?? Date.now()
    const actions = planPrewarm(this.#options.readSnapshot(), now, `prewarm-${now}`, only)
    for (const action of actions) {
      const key = `${action.namespace}/${action.name}`
      const last = this.#recent.get(key)
      const wait = action.type === 'create' ? 60_000 : (this.#options.retriggerAfterMs ?? 10 * 60_000)
      if (last !== undefined && now - last < wait) continue
      if (!this.leading) return
      try {
        if (action.type === 'create') {
          const created = await this.#options.writes.createReplicationDestination(action.namespace, action.body)
          this.#options.log.info({ namespace: action.namespace, name: action.name, pvc: action.pvc, created }, created ? 'pre-warm: created ReplicationDestination' : 'pre-warm: ReplicationDestination already exists')
        } else {
          await this.#options.writes.triggerReplicationDestination(action.namespace, action.name, action.manual)
          this.#options.log.info({ namespace: action.namespace, name: action.name, manual: action.manual }, 'pre-warm: triggered a sync (no latestImage yet)')
        }
        this.#recent.set(key, now)
        this.#options.onAction?.(action, true)
      } catch (error) {
        this.#options.onAction?.(action, false)
        this.#options.log.warn({ namespace: action.namespace, name: action.name, err: error instanceof Error ? error.message : String(error) }, `pre-warm: ${action.type} failed; retrying on the next pass`)
      }
    }
  }
}
