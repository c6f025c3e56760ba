// The catalog's answer for one PVC at one instant: a backup, no backup, or unknown.
import { pvcKey, type CatalogEntry, type CatalogState, type SourceState } from '../state/catalog-state.ts'

export type BackupAnswer =
  | { readonly state: 'backup'; readonly entry: CatalogEntry }
  | { readonly state: 'none' }
  | { readonly state: 'unknown'; readonly reason: string }

function sourceFresh(source: SourceState, now: number, staleAfterMs: number): boolean {
  return source.lastSuccess !== null && now - source.lastSuccess <= staleAfterMs
}

/** Newest first, so a warning names the most useful snapshot. */
function newer(a: CatalogEntry, b: CatalogEntry): CatalogEntry {
  return (b.newest ?? '') > (a.newest ?? '') ? b : a
}

/**
 * "none" only when every source is fresh and none holds a snapshot for the PVC: a stale or
 * never-polled source might hold the backup, and starting empty over a backup loses data.
 */
export function lookupBackup(catalog: CatalogState, namespace: string, pvc: string, now: number, staleAfterMs: number): BackupAnswer {
  const fresh = new Set<string>()
  const stale: string[] = []
  for (const source of catalog.sources) {
    if (sourceFresh(source, now, staleAfterMs)) fresh.add(source.name)
    else stale.push(source.lastSuccess === null ? `${source.name} (never polled successfully)` : `${source.name} (last success ${Math.round((now - source.lastSuccess) / 1000)}s ago)`)
  }
  let best: CatalogEntry | undefined
  let unreadable: CatalogEntry | undefined
  for (const entry of catalog.byPvc.get(pvcKey(namespace, pvc)) ?? []) {
    if (!fresh.has(entry.source)) continue
    if (entry.snapshots === null) unreadable = entry
    else if (entry.snapshots > 0) best = best ? newer(best, entry) : entry
  }
  if (best) return { state: 'backup', entry: best }
  if (catalog.sources.length === 0) return { state: 'unknown', reason: 'no catalog source is configured' }
  if (stale.length > 0) return { state: 'unknown', reason: `catalog source ${stale.join(', ')} is not current` }
  if (unreadable) return { state: 'unknown', reason: `a ${unreadable.kind} repository exists in source ${unreadable.source} but its snapshots could not be read` }
  return { state: 'none' }
}
