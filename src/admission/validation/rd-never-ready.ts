// A ReplicationDestination that participating PVCs would be restored from, but that can never give
// the volume populator an image (admission/rd-never-ready.ts; volsync-reference.md 5 and pitfall 9):
// a PVC pointed at it stays Pending forever, so the PVC rule starts such PVCs empty or denies them.
// Said on the RD itself, where the fix is made.
import type { Snapshot } from '../../state/snapshot.ts'
import { lookupBackup, lookupPvcBackup, type BackupAnswer } from '../backup-lookup.ts'
import type { AdmissionInput } from '../decision.ts'
import { matchesSelector } from '../label-selector.ts'
import { renderName } from '../name-template.ts'
import { describeFix, describeWhy, readRdImageShape, whyNeverReady } from '../rd-never-ready.ts'
import { asObject, asString } from '../../json.ts'
import { describeBackup, isVolSyncOwned, RD_KIND } from '../volsync-objects.ts'
import { describeObject, isReplicationDestinationRequest, type Finding } from './finding.ts'

/** At most this many PVCs are named in one finding (an RD normally serves one). */
const MAX_PVCS = 3

/**
 * The PVCs (names, in `namespace`) restored from the RD named `rdName`, each with the catalog's answer:
 * participating PVCs in cluster state whose `pvc.destinationName` renders to it or whose data source
 * names it, and - with the default `pvc.backupName` ({{pvc}}), where a backup's name is its PVC's - the
 * catalog's backups whose PVC would render to it (the PVC may not exist yet). Sorted, without duplicates.
 */
function pvcsRestoredFrom(snapshot: Snapshot, namespace: string, rdName: string, now: number): Array<{ pvc: string; answer: BackupAnswer }> {
  const { config } = snapshot
  const found = new Map<string, BackupAnswer>()
  for (const pvc of snapshot.cluster.pvcs.values()) {
    if (pvc.namespace !== namespace || isVolSyncOwned(pvc.labels) || !matchesSelector(config.pvc.selector, pvc.labels)) continue
    const named = pvc.dataSourceRef !== null && pvc.dataSourceRef.kind === RD_KIND && pvc.dataSourceRef.name === rdName
    if (!named && renderName(config.pvc.destinationName, { pvc: pvc.name, namespace }) !== rdName) continue
    found.set(pvc.name, lookupPvcBackup(snapshot, { namespace, name: pvc.name, labels: pvc.labels }, now).answer)
  }
  if (config.pvc.backupName === '{{pvc}}') {
    for (const entries of snapshot.catalog.byPvc.values()) {
      const entry = entries[0]
      if (!entry || entry.namespace !== namespace || found.has(entry.pvc)) continue
      if (renderName(config.pvc.destinationName, { pvc: entry.pvc, namespace }) !== rdName) continue
      found.set(entry.pvc, lookupBackup(snapshot.catalog, namespace, entry.pvc, now, snapshot.staleAfterMs))
    }
  }
  return [...found].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([pvc, answer]) => ({ pvc, answer }))
}

/**
 * Finding `rdNeverReady` for a ReplicationDestination CREATE/UPDATE that participating PVCs are restored
 * from (pvcsRestoredFrom: by `pvc.destinationName`, a PVC's data source, or a backup in the catalog at
 * `now`, epoch ms) and that can never give the volume populator an image for them: a copyMethod other
 * than Snapshot, a destinationPVC that is the PVC itself, or a Kopia/restic mover that cannot read the
 * backup's repository. An RD no participating PVC or backup maps to is not judged: Direct into a
 * destinationPVC is how VolSync restores in place, without the populator.
 */
export function checkRdNeverReady(snapshot: Snapshot, input: AdmissionInput, now: number): Finding[] {
  if (!isReplicationDestinationRequest(input) || !input.object) return []
  const metadata = asObject(input.object.metadata)
  const namespace = input.namespace || asString(metadata?.namespace) || ''
  const name = input.name || asString(metadata?.name) || ''
  if (name === '') return []
  const shape = readRdImageShape(asObject(input.object.spec))
  const messages = new Map<string, string[]>()
  for (const { pvc, answer } of pvcsRestoredFrom(snapshot, namespace, name, now)) {
    const reasons = whyNeverReady(shape, { pvc, backupKind: answer.state === 'backup' ? answer.entry.kind : null })
    if (reasons.length === 0) continue
    const backup = answer.state === 'backup' ? `, which has ${describeBackup(answer.entry)}` : ''
    const key = `${describeWhy(reasons)}\n${describeFix(reasons)}`
    messages.set(key, [...(messages.get(key) ?? []), `${namespace}/${pvc}${backup}`])
  }
  return [...messages].map(([key, pvcs]) => {
    const [why, fix] = key.split('\n')
    const shown = pvcs.slice(0, MAX_PVCS).join('; ') + (pvcs.length > MAX_PVCS ? `; and ${pvcs.length - MAX_PVCS} more` : '')
    return {
      rule: 'rdNeverReady' as const,
      message: `${describeObject(input)} is the restore source of PVC ${shown}, but it can never give the volume populator an image: ${why}. A PVC restored from it would stay Pending forever, so volsync-autorestore starts such a PVC empty (or denies it, pvc.whenBackupNotReady: deny) instead of waiting. ${fix}.`,
    }
  })
}
