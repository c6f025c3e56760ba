// The missed-restore guard (leader only): a Kubernetes Event per missed restore, and with
// guard.pauseSource the PVC's ReplicationSource gets spec.paused: true so that no backup pushes
// the empty state over the good snapshots. It never unpauses: a person decides (restore, or
// accept the empty volume) and clears spec.paused.
//
// What it has done is read back from the cluster, not kept in this process, so a new leader
// (another replica, or this one after a restart) neither reports a miss twice nor pauses again
// what a person unpaused:
// - the Event's name is derived from the PVC, so a second create answers 409 AlreadyExists;
// - the paused ReplicationSource carries PAUSED_FOR_ANNOTATION naming the PVC it was paused for.
// The API server deletes Events after its --event-ttl (1 h by default): a miss still there after
// that may be reported once more, by a leader that has not reported it itself.
import { createHash } from 'node:crypto'
import type { CoreV1Event } from '@kubernetes/client-node'
import type { Log } from '../log.ts'
import type { PvcInfo, ReplicationSourceInfo } from '../state/cluster-state.ts'
import type { Snapshot } from '../state/snapshot.ts'
import type { KubeWrites } from './kube-writes.ts'
import { findMissedRestores, type MissedRestore } from './missed-restores.ts'
import { ReportedEvents } from './reported-events.ts'
import { SerialPasses } from './serial-passes.ts'

/** On a ReplicationSource the guard paused: why, and what a person does about it. */
export const PAUSED_ANNOTATION = 'volsync-autorestore.io/paused'
/**
 * On a ReplicationSource the guard paused: the PVC it was paused for (its uid, or
 * `namespace/name` without one). It stays when a person removes spec.paused, which is how the
 * guard knows not to pause it again for the same PVC.
 */
export const PAUSED_FOR_ANNOTATION = 'volsync-autorestore.io/paused-for'

export interface GuardOptions {
  readonly writes: KubeWrites
  readonly readSnapshot: () => Snapshot
  readonly log: Pick<Log, 'info' | 'warn'>
  readonly now?: () => number
  /** Who reports, for the Event's source/reportingInstance (the pod name). */
  readonly instance?: string
}

const EVENT_INFIX = '.missed-restore.'
const EVENT_HASH_CHARS = 10
/** metadata.name of an Event is a DNS subdomain: at most 253 characters. */
const MAX_NAME = 253

/** One PVC instance: a PVC deleted and created again under the same name is another one. */
function pvcIdentity(pvc: PvcInfo): string {
  return pvc.uid ?? `${pvc.namespace}/${pvc.name}`
}

/**
 * The Event name for a missed restore of `pvc`: `<pvc name>.missed-restore.<10 hex digits of
 * sha256(uid, or namespace/name without one)>`. The same on every replica, so a create that
 * answers 409 means "already reported". A valid DNS subdomain of at most 253 characters: a PVC
 * name too long to fit is cut (and any `-`/`.` the cut leaves at its end dropped); the hash keeps
 * PVCs that share the kept prefix apart.
 */
export function missedRestoreEventName(pvc: PvcInfo): string {
  const hash = createHash('sha256').update(pvcIdentity(pvc)).digest('hex').slice(0, EVENT_HASH_CHARS)
  const prefix = pvc.name.slice(0, MAX_NAME - EVENT_INFIX.length - EVENT_HASH_CHARS).replace(/[-.]+$/, '')
  return `${prefix}${EVENT_INFIX}${hash}`
}

function event(missed: MissedRestore, now: number, instance: string): CoreV1Event {
  const time = new Date(now)
  return {
    metadata: { name: missedRestoreEventName(missed.pvc), namespace: missed.pvc.namespace },
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

/** Whether the guard should pause `rs` for `missed` now. */
function needsPause(rs: ReplicationSourceInfo, missed: MissedRestore): boolean {
  if (rs.namespace !== missed.pvc.namespace || rs.sourcePVC !== missed.pvc.name) return false
  // Paused already (by us, by a person): nothing to do. Our own pause shows up here one watch
  // event after our patch; a pass in between sends the same merge patch again, which is harmless.
  if (rs.paused) return false
  // We paused it for this PVC before and a person has since removed spec.paused: their decision.
  return rs.annotations?.[PAUSED_FOR_ANNOTATION] !== pvcIdentity(missed.pvc)
}

/**
 * Reports and (with guard.pauseSource) pauses missed restores. Reads the snapshot (cluster state
 * and catalog); writes Events and ReplicationSource patches through `writes`, only while the
 * leader's signal is not aborted. Write failures are logged and retried on the next pass.
 */
export class MissedRestoreGuard {
  readonly #options: GuardOptions
  readonly #reported = new ReportedEvents()
  readonly #passes = new SerialPasses()

  constructor(options: GuardOptions) {
    this.#options = options
  }

  /** One pass while leading; `signal` is the leader's (checked before every write). Passes never overlap. */
  run(signal: AbortSignal): Promise<void> {
    return this.#passes.run(() => this.#pass(signal))
  }

  async #pass(signal: AbortSignal): Promise<void> {
    const snapshot = this.#options.readSnapshot()
    const now = this.#options.now?.() ?? Date.now()
    const misses = findMissedRestores(snapshot, now)
    const current = new Set(misses.map((missed) => missedRestoreEventName(missed.pvc)))
    this.#reported.keepOnly(current)
    for (const missed of misses) {
      if (signal.aborted) return
      await this.#report(missed, now)
      if (!snapshot.config.guard.pauseSource) continue
      for (const rs of snapshot.cluster.replicationSources.values()) {
        if (!needsPause(rs, missed)) continue
        if (signal.aborted) return
        await this.#pause(rs, missed)
      }
    }
  }

  async #report(missed: MissedRestore, now: number): Promise<void> {
    const { namespace, name: pvc } = missed.pvc
    const name = missedRestoreEventName(missed.pvc)
    if (this.#reported.has(name)) return
    try {
      const created = await this.#options.writes.createEvent(namespace, event(missed, now, this.#options.instance ?? 'volsync-autorestore'))
      this.#reported.add(name)
      if (created) this.#options.log.warn({ namespace, pvc, event: name }, missed.message)
      else this.#options.log.info({ namespace, pvc, event: name }, 'missed-restore guard: already reported (the Event exists)')
    } catch (error) {
      this.#options.log.warn({ namespace, pvc, event: name, err: error }, 'missed-restore guard: cannot create the Event; retrying')
    }
  }

  async #pause(rs: ReplicationSourceInfo, missed: MissedRestore): Promise<void> {
    try {
      await this.#options.writes.pauseReplicationSource(rs.namespace, rs.name, {
        [PAUSED_ANNOTATION]: `missed restore of PVC ${missed.pvc.name} (backup ${missed.backup.source}, newest ${missed.backup.newest}): paused so no backup overwrites it; restore the data or accept the empty volume, then remove spec.paused`,
        [PAUSED_FOR_ANNOTATION]: pvcIdentity(missed.pvc),
      })
      this.#options.log.warn({ namespace: rs.namespace, replicationSource: rs.name, pvc: missed.pvc.name }, 'missed-restore guard: paused the ReplicationSource')
    } catch (error) {
      this.#options.log.warn({ namespace: rs.namespace, replicationSource: rs.name, err: error }, 'missed-restore guard: cannot pause the ReplicationSource; retrying')
    }
  }
}
