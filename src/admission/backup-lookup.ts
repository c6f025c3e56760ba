// The catalog's answer for one PVC at one instant: a backup, no backup, or unknown. A PVC's backups
// are filed under its backup name (`pvc.backupName`, default its own name) and, in a shared Kopia
// repository, under the Kopia username VolSync derives from that name (volsync/names.ts): both are
// looked up, so a dotted or long name is found where the catalog lists it.
import { pvcKey, type CatalogEntry, type CatalogState, type SourceState } from '../state/catalog-state.ts'
import type { Snapshot } from '../state/snapshot.ts'
import { catalogNamesOf, kopiaHostname } from '../volsync/names.ts'
import { renderForPvc } from './name-template.ts'
import { describeBackup } from './volsync-objects.ts'

export type BackupAnswer =
  | {
    readonly state: 'backup'
    readonly entry: CatalogEntry
    /** Set when the entry was found under the Kopia username of the backup name, not the name itself: says so, for reasons. */
    readonly filedAs?: string
  }
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
 * The catalog's entries for backup name `backupName` in `namespace`: those filed under the name itself
 * (any kind), then Kopia entries filed under the Kopia identity VolSync gives an RS of that name
 * (kopiaUsername@kopiaHostname), each with the name it was found under.
 */
function entriesFor(catalog: CatalogState, namespace: string, backupName: string): Array<{ entry: CatalogEntry; filedAs?: string }> {
  const names = catalogNamesOf(backupName)
  const found: Array<{ entry: CatalogEntry; filedAs?: string }> = (catalog.byPvc.get(pvcKey(namespace, names.name)) ?? []).map((entry) => ({ entry }))
  if (names.kopiaUsername !== null) {
    const hostname = kopiaHostname(namespace, backupName)
    for (const entry of catalog.byPvc.get(pvcKey(hostname, names.kopiaUsername)) ?? []) {
      // Restic and per-PVC repositories are filed under the name as given; only a shared Kopia repository under the username.
      if (entry.kind === 'kopia') found.push({ entry, filedAs: `Kopia username ${names.kopiaUsername}@${hostname} (VolSync's name for a ReplicationSource named ${backupName}: only [A-Za-z0-9_-] kept, trimmed, cut at 50)` })
    }
  }
  return found
}

/**
 * The catalog's answer for the backups filed under `backupName` (a PVC's `pvc.backupName`, rendered) in
 * `namespace` at `now` (epoch ms): "backup" with the newest entry holding a snapshot in a source polled
 * within `staleAfterMs`; "none" only when every source is fresh and none holds a snapshot for it (a stale
 * or never-polled source might hold the backup, and starting empty over a backup loses data); otherwise
 * "unknown" with the reason. Matches VolSync's Kopia naming (see entriesFor). Pure.
 */
export function lookupBackup(catalog: CatalogState, namespace: string, backupName: string, now: number, staleAfterMs: number): BackupAnswer {
  const fresh = new Set<string>()
  const stale: string[] = []
  for (const source of catalog.sources) {
    if (sourceFresh(source, now, staleAfterMs)) fresh.add(source.name)
    else stale.push(source.lastSuccess === null ? `${source.name} (never polled successfully)` : `${source.name} (last success ${Math.round((now - source.lastSuccess) / 1000)}s ago)`)
  }
  let best: { entry: CatalogEntry; filedAs?: string } | undefined
  let unreadable: CatalogEntry | undefined
  for (const found of entriesFor(catalog, namespace, backupName)) {
    const { entry } = found
    if (!fresh.has(entry.source)) continue
    if (entry.snapshots === null) unreadable = entry
    else if (entry.snapshots > 0) best = best && newer(best.entry, entry) === best.entry ? best : found
  }
  if (best) return best.filedAs === undefined ? { state: 'backup', entry: best.entry } : { state: 'backup', entry: best.entry, filedAs: best.filedAs }
  if (catalog.sources.length === 0) return { state: 'unknown', reason: 'no catalog source is configured' }
  if (stale.length > 0) return { state: 'unknown', reason: `catalog source ${stale.join(', ')} is not current` }
  if (unreadable) {
    const why = unreadable.exact === false ? 'has not been read yet (repositories are read after they are listed, a few at a time, after a start)' : 'could not be read'
    return { state: 'unknown', reason: `a ${unreadable.kind} repository exists in source ${unreadable.source} but its snapshots ${why}` }
  }
  return { state: 'none' }
}

/** A PVC as the lookup needs it: `name` null for a `generateName` PVC at admission. */
export interface PvcNaming {
  readonly namespace: string
  readonly name: string | null
  readonly labels: Readonly<Record<string, string>>
}

/**
 * The backup answer for a PVC: its backup name is `pvc.backupName` rendered for it (`{{pvc}}`,
 * `{{namespace}}`, `{{label "KEY"}}`), then lookupBackup. A template that cannot be rendered (a missing
 * label; `{{pvc}}` of a generateName PVC) gives "unknown" with a reason naming what is missing and the
 * key to change: nobody can tell which backup is meant. `backupName` is null then. Pure.
 */
export function lookupPvcBackup(snapshot: Snapshot, pvc: PvcNaming, now: number): { readonly answer: BackupAnswer; readonly backupName: string | null } {
  const template = snapshot.config.pvc.backupName
  const rendered = renderForPvc(template, { pvc: pvc.name, namespace: pvc.namespace, labels: pvc.labels })
  if ('missing' in rendered) {
    return { answer: { state: 'unknown', reason: `pvc.backupName "${template}" needs ${rendered.missing}, so which backup is this PVC's cannot be told${rendered.missing.includes('label "') ? '; set the label or change pvc.backupName' : ''}` }, backupName: null }
  }
  return { answer: lookupBackup(snapshot.catalog, pvc.namespace, rendered.value, now, snapshot.staleAfterMs), backupName: rendered.value }
}

/**
 * "the kopia backup in source garage (3 snapshots, newest ...)", plus where it was found when that was
 * under the Kopia username rather than the backup name itself.
 */
export function describeFoundBackup(answer: Extract<BackupAnswer, { state: 'backup' }>): string {
  return answer.filedAs === undefined ? describeBackup(answer.entry) : `${describeBackup(answer.entry)}, filed under ${answer.filedAs}`
}
