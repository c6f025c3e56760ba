// Backup health per participating PVC, from its ReplicationSource's status: when it last backed up
// successfully, how the last mover run ended, when the next sync is due, and whether the backup is
// overdue. Read by /status (server/status-view.ts) and the metrics (server/metrics.ts), so the page,
// the gauges and the chart's alert agree. Pure: reads the snapshot and `now`.
//
// Overdue: no successful sync within twice the schedule's period (volsync/cron-period.ts: the longest
// gap between two fire times), counted from the last success, or from the RS's creation when it never
// succeeded. Twice, so one failed or late run (a busy repository, a retried Job, the jitter) is not an
// alarm and two in a row are. A paused RS runs no backup, so it becomes overdue too. A manual or
// continuous RS (no schedule), or a schedule that cannot be read, has no period: never overdue.
import { matchesSelector } from '../admission/label-selector.ts'
import { isVolSyncOwned } from '../admission/volsync-objects.ts'
import { objectKey, type PvcInfo, type ReplicationSourceInfo } from '../state/cluster-state.ts'
import type { Snapshot } from '../state/snapshot.ts'
import { cronPeriodMs } from './cron-period.ts'

/** The overdue threshold in schedule periods. */
export const OVERDUE_PERIODS = 2

export interface BackupHealth {
  readonly namespace: string
  readonly pvc: string
  /** The ReplicationSource whose `sourcePVC` is this PVC (the most recently successful when several are). */
  readonly source: string
  /** How many ReplicationSources back this PVC up (normally 1). */
  readonly sources: number
  readonly paused: boolean
  readonly schedule: string | null
  /** The schedule's longest gap between fires, in seconds; null without a readable schedule. */
  readonly periodSeconds: number | null
  /** status.lastSyncTime, epoch ms: the last successful backup; null before the first. */
  readonly lastSuccess: number | null
  readonly lastSyncDurationSeconds: number | null
  /** status.latestMoverStatus.result: `Successful`, `Failed`, or null before a mover finished. */
  readonly lastResult: string | null
  /** status.nextSyncTime, epoch ms; null when none is scheduled. */
  readonly nextSync: number | null
  /** No success within OVERDUE_PERIODS periods (see the file comment). */
  readonly overdue: boolean
}

/**
 * Whether a PVC takes part (pvc.selector, and not one of VolSync's own PVCs). The directory source holds
 * every PVC, the API-server source only the selected ones: both are filtered alike.
 */
export function isParticipating(snapshot: Snapshot, pvc: PvcInfo): boolean {
  return !isVolSyncOwned(pvc.labels) && matchesSelector(snapshot.config.pvc.selector, pvc.labels)
}

function newestFirst(a: ReplicationSourceInfo, b: ReplicationSourceInfo): number {
  const byTime = (b.lastSyncTime ?? -Infinity) - (a.lastSyncTime ?? -Infinity)
  if (byTime !== 0 && !Number.isNaN(byTime)) return byTime
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0
}

/** Per published map of ReplicationSources (snapshots are immutable): `namespace/sourcePVC` -> its sources, most recently successful first. */
const bySourcePvc = new WeakMap<ReadonlyMap<string, ReplicationSourceInfo>, Map<string, ReplicationSourceInfo[]>>()

/** The ReplicationSources of one namespace whose `spec.sourcePVC` names `pvc`, most recently successful first. */
export function sourcesOf(snapshot: Snapshot, namespace: string, pvc: string): readonly ReplicationSourceInfo[] {
  const all = snapshot.cluster.replicationSources
  let index = bySourcePvc.get(all)
  if (!index) {
    index = new Map()
    for (const rs of all.values()) {
      if (rs.sourcePVC === null) continue
      const key = objectKey(rs.namespace, rs.sourcePVC)
      const list = index.get(key)
      if (list) list.push(rs)
      else index.set(key, [rs])
    }
    for (const list of index.values()) list.sort(newestFirst)
    bySourcePvc.set(all, index)
  }
  return index.get(objectKey(namespace, pvc)) ?? []
}

/** Whether a source with this period, last success and creation time is overdue at `now` (all epoch ms). */
export function isOverdue(periodMs: number | null, lastSuccess: number | null, createdAt: number | null, now: number): boolean {
  if (periodMs === null) return false
  const since = lastSuccess ?? createdAt
  return since !== null && now - since > OVERDUE_PERIODS * periodMs
}

/** The backup health of one PVC at `now` (epoch ms); null when no ReplicationSource backs it up. */
export function backupHealth(snapshot: Snapshot, pvc: PvcInfo, now: number): BackupHealth | null {
  const sources = sourcesOf(snapshot, pvc.namespace, pvc.name)
  const rs = sources[0]
  if (!rs) return null
  const schedule = rs.schedule ?? null
  const periodMs = schedule === null ? null : cronPeriodMs(schedule)
  const lastSuccess = rs.lastSyncTime ?? null
  return {
    namespace: pvc.namespace,
    pvc: pvc.name,
    source: rs.name,
    sources: sources.length,
    paused: rs.paused,
    schedule,
    periodSeconds: periodMs === null ? null : periodMs / 1000,
    lastSuccess,
    lastSyncDurationSeconds: rs.lastSyncDurationSeconds ?? null,
    lastResult: rs.lastResult ?? null,
    nextSync: rs.nextSyncTime ?? null,
    overdue: isOverdue(periodMs, lastSuccess, rs.createdAt ?? null, now),
  }
}

/**
 * Backup health of every participating PVC that has a ReplicationSource, sorted by namespace then PVC:
 * the bounded set the per-PVC metrics are labelled with (never a PVC that does not take part).
 */
export function participatingBackupHealth(snapshot: Snapshot, now: number): BackupHealth[] {
  const out: BackupHealth[] = []
  for (const pvc of snapshot.cluster.pvcs.values()) {
    if (!isParticipating(snapshot, pvc)) continue
    const health = backupHealth(snapshot, pvc, now)
    if (health) out.push(health)
  }
  return out.sort((a, b) => (a.namespace === b.namespace ? (a.pvc < b.pvc ? -1 : a.pvc > b.pvc ? 1 : 0) : a.namespace < b.namespace ? -1 : 1))
}
