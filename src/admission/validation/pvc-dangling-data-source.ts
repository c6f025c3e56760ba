// A PVC whose data source is a ReplicationDestination that does not exist, while no backup is
// known for it: the volume populator waits for the RD with no timeout, so the PVC stays Pending
// forever (volsync-reference.md 5, pitfall 10). Only CREATE: a PVC's data source is immutable.
import type { Snapshot } from '../../state/snapshot.ts'
import { objectKey } from '../../state/cluster-state.ts'
import { lookupPvcBackup } from '../backup-lookup.ts'
import type { AdmissionInput } from '../decision.ts'
import { asObject, asString } from '../../json.ts'
import { stringMap } from '../object-fields.ts'
import { RD_API_GROUP, RD_KIND, readDataSource } from '../volsync-objects.ts'
import { describeObject, isPvcRequest, type Finding } from './finding.ts'

/**
 * Finding `pvcDanglingDataSource` for a PVC CREATE whose dataSourceRef (or dataSource) names a
 * ReplicationDestination that is absent from `snapshot.cluster` while the catalog, at `now` (epoch ms),
 * knows no backup for the PVC. Silent until the cluster state has been listed once (`synced`), and when
 * the backup is known or unknown, since pre-warm may yet create the RD.
 */
export function checkPvcDanglingDataSource(snapshot: Snapshot, input: AdmissionInput, now: number): Finding[] {
  if (!isPvcRequest(input) || input.operation !== 'CREATE' || !input.object) return []
  const spec = asObject(input.object.spec)
  const ref = readDataSource(spec)
  // The populator ignores a reference without a name, so it cannot hang on one.
  if (!ref || ref.apiGroup !== RD_API_GROUP || ref.kind !== RD_KIND || ref.name === '') return []
  // Before the first full list, "not in cluster state" does not mean "does not exist".
  if (!snapshot.cluster.synced) return []
  const metadata = asObject(input.object.metadata)
  const namespace = input.namespace || asString(metadata?.namespace) || ''
  const name = input.name || asString(metadata?.name) || ''
  if (snapshot.cluster.replicationDestinations.has(objectKey(namespace, ref.name))) return []
  // A known backup (or an unknown catalog) means the RD may yet be created, e.g. by pre-warm.
  // A backup name that cannot be rendered (generateName, a missing label) names no backup pre-warm could restore.
  const { answer, backupName } = lookupPvcBackup(snapshot, { namespace, name: name || null, labels: stringMap(input.object, 'labels') }, now)
  if (backupName !== null && answer.state !== 'none') return []
  const field = asObject(spec?.dataSourceRef) ? 'spec.dataSourceRef' : 'spec.dataSource'
  return [{
    rule: 'pvcDanglingDataSource',
    message: `${describeObject(input)}: ${field} names ReplicationDestination ${ref.name}, which does not exist in namespace ${namespace || '(none)'}, and no backup is known for this PVC; the volume populator waits for it with no timeout, so the PVC stays Pending forever. Create ReplicationDestination ${ref.name} first, or remove ${field} to start with an empty volume.`,
  }]
}
