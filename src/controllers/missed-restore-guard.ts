// The missed-restore guard (leader only): a Kubernetes Event per missed restore, and with
// guard.pauseSource the PVC's ReplicationSource gets spec.paused: true so that no backup pushes
// the empty state over the good snapshots. It never unpauses: a person decides (restore, or
// accept the empty volume) and clears spec.paused.
import type { CoreV1Event } from '@kubernetes/client-node'
import type { Snapshot } from '../state/snapshot.ts'
import type { KubeWrites } from './kube-writes.ts'
import { findMissedRestores, type MissedRestore } from './missed-restores.ts'

export const PAUSED_ANNOTATION = 'volsync-autorestore.io/paused'

export interface GuardOptions {
  readonly writes: KubeWrites
  readonly readSnapshot: () => Snapshot
  readonly log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void }
  readonly now?: () => number
  /** Who reports, for the Event's source/reportingInstance (the pod name). */
  readonly instance?: string
}

function event(missed: MissedRestore, now: number, instance: string): CoreV1Event {
  const time = new Date(now)
  return {
    metadata: { generateName: `${missed.pvc.name}.missed-restore.`, namespace: missed.pvc.namespace },
    involvedObject: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: missed.pvc.namespace, name: missed.pvc.name, ...(missed.pvc.uid ? { uid: missed.pvc.uid } : {}) },
    type: 'Warning',
    reason: 'MissedRestore',
    message: missed.message,
    source: { component: 'volsync-autorestore' },
    reportingComponent: 'volsync-autorestore',
    reportingInstance: instance,
    firstTimestamp: time,
    lastTimestamp: time,
    count: 1,
  }
}

export class MissedRestoreGuard {
  readonly #options: GuardOptions
  /** PVC uids (or namespace/name) already reported or paused by this process. */
  readonly #reported = new Set<string>()
  readonly #paused = new Set<string>()

  constructor(options: GuardOptions) {
    this.#options = options
  }

  /** One pass while leading; `signal` is the leader's (checked before every write). */
  async run(signal: AbortSignal): Promise<void> {
    const snapshot = this.#options.readSnapshot()
    const now = this.#options.now?.() ?? Date.now()
    for (const missed of findMissedRestores(snapshot, now)) {
      const id = missed.pvc.uid ?? `${missed.pvc.namespace}/${missed.pvc.name}`
      if (signal.aborted) return
      if (!this.#reported.has(id)) {
        try {
          await this.#options.writes.createEvent(missed.pvc.namespace, event(missed, now, this.#options.instance ?? 'volsync-autorestore'))
          this.#reported.add(id)
          this.#options.log.warn({ namespace: missed.pvc.namespace, pvc: missed.pvc.name }, missed.message)
        } catch (error) {
          this.#options.log.warn({ namespace: missed.pvc.namespace, pvc: missed.pvc.name, err: error instanceof Error ? error.message : String(error) }, 'missed-restore guard: cannot create the Event; retrying')
        }
      }
      if (!snapshot.config.guard.pauseSource) continue
      for (const rs of snapshot.cluster.replicationSources.values()) {
        const key = `${rs.namespace}/${rs.name}`
        if (rs.namespace !== missed.pvc.namespace || rs.sourcePVC !== missed.pvc.name || rs.paused || this.#paused.has(key)) continue
        if (signal.aborted) return
        try {
          await this.#options.writes.pauseReplicationSource(rs.namespace, rs.name, {
            [PAUSED_ANNOTATION]: `missed restore of PVC ${missed.pvc.name} (backup ${missed.backup.source}, newest ${missed.backup.newest}): paused so no backup overwrites it; restore the data or accept the empty volume, then remove spec.paused`,
          })
          this.#paused.add(key)
          this.#options.log.warn({ namespace: rs.namespace, replicationSource: rs.name, pvc: missed.pvc.name }, 'missed-restore guard: paused the ReplicationSource')
        } catch (error) {
          this.#options.log.warn({ namespace: rs.namespace, replicationSource: rs.name, err: error instanceof Error ? error.message : String(error) }, 'missed-restore guard: cannot pause the ReplicationSource; retrying')
        }
      }
    }
  }
}
