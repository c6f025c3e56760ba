// The pre-warm controller (leader only): applies planPrewarm to the cluster. It runs on every
// tick while leading and at once for a PVC whose admission decided `wait` (a nudge). Writes stop
// the moment leadership is lost: the leader's AbortSignal is checked before every write.
// It keeps no memory between passes: what it created and when it last triggered are read back
// from the RDs (see planPrewarm), so a new leader carries on where the old one stopped.
import type { Log } from '../log.ts'
import type { Snapshot } from '../state/snapshot.ts'
import type { KubeWrites } from './kube-writes.ts'
import { DEFAULT_RETRIGGER_AFTER_MS, planPrewarm, type PrewarmAction } from './prewarm-plan.ts'
import { SerialPasses } from './serial-passes.ts'

export interface PrewarmOptions {
  readonly writes: KubeWrites
  readonly readSnapshot: () => Snapshot
  readonly log: Pick<Log, 'info' | 'warn'>
  /** How often a leader re-plans (default 15 s). */
  readonly intervalMs?: number
  /** A finished RD that still has no image is re-triggered once its trigger is this old (default 10 min). */
  readonly retriggerAfterMs?: number
  readonly now?: () => number
  readonly onAction?: (action: PrewarmAction, ok: boolean) => void
}

/**
 * Runs planPrewarm while leading: reads the snapshot, creates and triggers ReplicationDestinations
 * through `writes`, reports each action to `onAction`. Failed writes are logged and retried on the
 * next pass.
 */
export class PrewarmController {
  readonly #options: PrewarmOptions
  #leading: AbortSignal | undefined
  #timer: NodeJS.Timeout | undefined
  readonly #passes = new SerialPasses()

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

  /**
   * A `wait` decision: plan for this PVC now instead of at the next pass. Best effort, with a
   * bounded delay: on a replica that does not lead it does nothing (every replica admits PVCs, so
   * with N replicas most nudges land on a follower). Nothing is lost: a nudge only makes the leader
   * plan earlier what its own plan already holds, since the follower decided `wait` from a backup
   * its catalog proves and the leader's catalog and watch see the same backup and namespace (each
   * replica polls and watches for itself, so at most one poll apart). The leader creates or
   * triggers the RD when its state changes (the runtime reacts to every watch event and catalog
   * poll within 0.5 s) and at the latest on its next periodic pass (`intervalMs`, 15 s).
   */
  nudge(namespace: string, pvc: string): void {
    if (this.leading) void this.run({ namespace, pvc })
  }

  /** One pass; passes never overlap. */
  run(only?: { namespace: string; pvc: string }): Promise<void> {
    return this.#passes.run(() => this.#pass(only))
  }

  async #pass(only: { namespace: string; pvc: string } | undefined): Promise<void> {
    const now = this.#options.now?.() ?? Date.now()
    const retriggerAfterMs = this.#options.retriggerAfterMs ?? DEFAULT_RETRIGGER_AFTER_MS
    const actions = planPrewarm(this.#options.readSnapshot(), { now, retriggerAfterMs, ...(only ? { only } : {}) })
    for (const action of actions) {
      if (!this.leading) return
      try {
        if (action.type === 'create') {
          // 409 (false): created by an earlier pass, an earlier leader or a person, and not in our snapshot yet.
          const created = await this.#options.writes.createReplicationDestination(action.namespace, action.body)
          this.#options.log.info({ namespace: action.namespace, name: action.name, pvc: action.pvc, created }, created ? 'pre-warm: created ReplicationDestination' : 'pre-warm: ReplicationDestination already exists')
        } else {
          await this.#options.writes.triggerReplicationDestination(action.namespace, action.name, action.manual)
          this.#options.log.info({ namespace: action.namespace, name: action.name, manual: action.manual }, 'pre-warm: triggered a sync (no latestImage yet)')
        }
        this.#options.onAction?.(action, true)
      } catch (error) {
        this.#options.onAction?.(action, false)
        this.#options.log.warn({ namespace: action.namespace, name: action.name, err: error }, `pre-warm: ${action.type} failed; retrying on the next pass`)
      }
    }
  }
}
