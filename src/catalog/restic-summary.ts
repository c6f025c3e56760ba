// What the catalog keeps of a list of restic snapshots: how many, the newest's time and size.
import type { ResticSnapshot } from '../restic/repository.ts'
import type { SnapshotSummary } from './catalog-entry.ts'

/**
 * One PVC's summary over its restic snapshots: the count, and the newest's time (as UTC ISO, since restic
 * writes the host's offset) and size. No snapshot: `{ snapshots: 0 }`, which is no backup.
 */
export function summarizeResticSnapshots(snapshots: readonly ResticSnapshot[]): SnapshotSummary {
  let newest: ResticSnapshot | undefined
  for (const s of snapshots) if (newest === undefined || s.timeMs > newest.timeMs) newest = s
  if (newest === undefined) return { snapshots: 0 }
  return {
    snapshots: snapshots.length,
    // UTC, so that times from every source compare as strings (restic writes the host's offset).
    newest: new Date(newest.timeMs).toISOString(),
    ...(newest.sizeBytes !== undefined ? { sizeBytes: newest.sizeBytes } : {}),
  }
}
