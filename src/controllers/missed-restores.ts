// Which participating PVCs missed their restore (design section 5, "Missed-restore guard"): no
// dataSourceRef, and the catalog knows a backup whose newest snapshot is older than the PVC, so
// that backup existed when the PVC was created (the webhook was down, failing open, or the
// catalog was not current). A pure function of the snapshot: /status, the metric and the guard
// all see the same list.
import { describeFoundBackup, lookupPvcBackup } from '../admission/backup-lookup.ts'
import { matchesSelector } from '../admission/label-selector.ts'
import type { CatalogEntry } from '../state/catalog-state.ts'
import type { PvcInfo } from '../state/cluster-state.ts'
import type { Snapshot } from '../state/snapshot.ts'

export interface MissedRestore {
  readonly pvc: PvcInfo
  readonly backup: CatalogEntry
  readonly message: string
}

/**
 * Participating PVCs (`pvc.selector`) created without a data source after the newest snapshot of a backup
 * the catalog knows at `now` (epoch ms), found by the PVC's backup name (`pvc.backupName`) as admission
 * finds it (admission/backup-lookup.ts): they probably started empty. Sorted by namespace/name; empty
 * until the cluster state has been listed once. Pure: reads only `snapshot`.
 */
export function findMissedRestores(snapshot: Snapshot, now: number): MissedRestore[] {
  const { config, cluster } = snapshot
  const missed: MissedRestore[] = []
  // A partial first list could show a PVC without the RS to pause: judge only a complete view.
  if (!cluster.synced) return missed
  for (const pvc of cluster.pvcs.values()) {
    if (pvc.dataSourceRef !== null || pvc.createdAt === null) continue
    if (!matchesSelector(config.pvc.selector, pvc.labels)) continue
    // By the PVC's backup name (pvc.backupName) and VolSync's Kopia naming, as admission looks it up.
    const answer = lookupPvcBackup(snapshot, pvc, now).answer
    if (answer.state !== 'backup' || answer.entry.newest === undefined) continue
    const newest = Date.parse(answer.entry.newest)
    if (!(newest < pvc.createdAt)) continue
    const backup = answer.entry
    missed.push({
      pvc,
      backup,
      message: `PersistentVolumeClaim ${pvc.namespace}/${pvc.name} was created ${new Date(pvc.createdAt).toISOString()} without a dataSourceRef although ${describeFoundBackup(answer)} existed: it probably started empty. Its next backups would push that empty state over the good snapshots until retention drops them.`,
    })
  }
  return missed.sort((a, b) => `${a.pvc.namespace}/${a.pvc.name}`.localeCompare(`${b.pvc.namespace}/${b.pvc.name}`))
}
