// The backup generator (leader only, backup.enabled): applies planBackups to the cluster. Every pass
// plans from the snapshot alone, so a new leader carries on where the old one stopped; writes stop
// the moment leadership is lost (the leader's AbortSignal is checked before every write).
//
// Server-side apply, field manager APPLY_FIELD_MANAGER: first without force, so a field another
// manager changed on our RS shows up as a 409 Conflict that is logged (who changed what), then with
// force to take our fields back. The applied object never holds spec.paused, so neither apply can
// touch what the missed-restore guard or a person set there.
import type { CoreV1Event } from '@kubernetes/client-node'
import { errorMessage } from '../errors.ts'
import type { Log } from '../log.ts'
import type { Snapshot } from '../state/snapshot.ts'
import { planBackups, type BackupAction, type BackupEvent } from './backup-plan.ts'
import { isConflict, type KubeWrites } from './kube-writes.ts'
import { ReportedEvents } from './reported-events.ts'
import { SerialPasses } from './serial-passes.ts'

/** The field manager of the paused create of a missed restore's RS: spec.paused is recorded as its field, never the generator's. */
export const PAUSED_CREATE_FIELD_MANAGER = 'volsync-autorestore-guard'

export interface BackupGeneratorOptions {
  readonly writes: KubeWrites
  readonly readSnapshot: () => Snapshot
  readonly log: Pick<Log, 'info' | 'warn'>
  readonly now?: () => number
  /** Who reports, for the Events' reportingInstance (the pod name). */
  readonly instance?: string
  /** Called after each write with whether it succeeded (metrics, tests). */
  readonly onAction?: (action: BackupAction, ok: boolean) => void
}

function eventOf(action: BackupEvent, now: number, instance: string): CoreV1Event {
  const time = new Date(now)
  return {
    metadata: { name: action.name, namespace: action.namespace },
    involvedObject: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: action.namespace, name: action.pvc, ...(action.pvcUid ? { uid: action.pvcUid } : {}) },
    type: 'Warning',
    reason: action.reason,
    message: action.message,
    source: { component: 'volsync-autorestore' },
    reportingComponent: 'volsync-autorestore',
    reportingInstance: instance,
    firstTimestamp: time,
    lastTimestamp: time,
    count: 1,
  }
}

/**
 * Keeps the ReplicationSources of participating PVCs (controllers/backup-plan.ts). Reads the snapshot;
 * writes RS applies, paused creates and warning Events through `writes`, only while the leader's signal
 * is not aborted. A failed write is logged and retried on the next pass.
 */
export class BackupGenerator {
  readonly #options: BackupGeneratorOptions
  readonly #reported = new ReportedEvents()
  readonly #passes = new SerialPasses()

  constructor(options: BackupGeneratorOptions) {
    this.#options = options
  }

  /** One pass while leading; `signal` is the leader's. Passes never overlap; never rejects. */
  run(signal: AbortSignal): Promise<void> {
    return this.#passes.run(() => this.#pass(signal))
  }

  async #pass(signal: AbortSignal): Promise<void> {
    const now = this.#options.now?.() ?? Date.now()
    const { actions } = planBackups(this.#options.readSnapshot(), now)
    const current = new Set(actions.filter((a) => a.type === 'event').map((a) => a.name))
    this.#reported.keepOnly(current)
    for (const action of actions) {
      if (signal.aborted) return
      if (action.type === 'event' && this.#reported.has(action.name)) continue
      try {
        await this.#write(action, now, signal)
        this.#options.onAction?.(action, true)
      } catch (error) {
        this.#options.onAction?.(action, false)
        this.#options.log.warn({ namespace: action.namespace, pvc: action.pvc, name: action.name, err: error }, `backup: ${action.type} failed; retrying on the next pass`)
      }
    }
  }

  async #write(action: BackupAction, now: number, signal: AbortSignal): Promise<void> {
    const { writes, log } = this.#options
    const where = { namespace: action.namespace, pvc: action.pvc, name: action.name }
    switch (action.type) {
      case 'event': {
        const created = await writes.createEvent(action.namespace, eventOf(action, now, this.#options.instance ?? 'volsync-autorestore'))
        this.#reported.add(action.name)
        if (created) log.warn({ ...where, reason: action.reason }, action.message)
        return
      }
      case 'create-paused': {
        const created = await writes.createReplicationSource(action.namespace, action.body, PAUSED_CREATE_FIELD_MANAGER)
        log.warn(where, created ? 'backup: created the ReplicationSource of a missed restore PAUSED (remove spec.paused once the data is restored or accepted)' : 'backup: the ReplicationSource of a missed restore exists already')
        return
      }
      case 'apply': {
        try {
          await writes.applyReplicationSource(action.namespace, action.name, action.body, false)
        } catch (error) {
          if (!isConflict(error, 409) || signal.aborted) throw error
          // Another manager changed fields the generator applies: say who and what, then take them back.
          log.warn({ ...where, conflict: errorMessage(error) }, 'backup: fields of a generated ReplicationSource were changed by another field manager; applying them again')
          await writes.applyReplicationSource(action.namespace, action.name, action.body, true)
        }
        log.info({ ...where, schedule: (action.body.spec as { trigger: { schedule: string } }).trigger.schedule }, action.exists ? 'backup: updated the ReplicationSource' : 'backup: created the ReplicationSource')
      }
    }
  }
}
