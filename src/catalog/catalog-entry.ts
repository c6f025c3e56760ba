// Builds the catalog's entry for one PVC from what a source counted.
import type { BackupKind, CatalogEntry } from '../state/catalog-state.ts'

export interface SnapshotSummary {
  /** null: the repository exists but its snapshots could not be counted ("unknown", never a backup). */
  readonly snapshots: number | null
  /** RFC 3339, UTC. */
  readonly newest?: string
  readonly sizeBytes?: number
  readonly identity?: { readonly username: string; readonly hostname: string }
}

/**
 * The CatalogEntry of `namespace`/`pvc` in source `source`, with the summary's optional fields copied only
 * when set (entries are compared deeply between polls, so an `undefined` field would be a change).
 */
export function catalogEntry(source: string, namespace: string, pvc: string, kind: BackupKind, summary: SnapshotSummary): CatalogEntry {
  return {
    namespace, pvc, source, kind, snapshots: summary.snapshots,
    ...(summary.newest !== undefined ? { newest: summary.newest } : {}),
    ...(summary.sizeBytes !== undefined ? { sizeBytes: summary.sizeBytes } : {}),
    ...(summary.identity !== undefined ? { identity: summary.identity } : {}),
  }
}
