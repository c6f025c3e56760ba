// The repository Secret per app (backup.secret), planned: for every participating PVC, the Secret the
// seeds' Kyverno generate policy made from shared credentials, with the named keys of the shared Secret
// copied byte for byte (their base64 text as read) and the templated values rendered for the PVC.
// Pure: reads the snapshot, the config and the shared Secret's data; the controller
// (backup-secret.ts) writes. Nothing here is logged by value: problems name Secrets and keys only.
import { createHash } from 'node:crypto'
import { renderForPvc } from '../admission/name-template.ts'
import type { BackupSecretConfig } from '../config/schema.ts'
import { objectKey } from '../state/cluster-state.ts'
import type { Snapshot } from '../state/snapshot.ts'
import { isParticipating } from '../volsync/backup-health.ts'
import { MANAGED_BY, MANAGED_BY_LABEL } from './prewarm-plan.ts'

/** On every Secret the server writes: the PVC it was rendered for. */
export const SECRET_PVC_ANNOTATION = 'volsync-autorestore.io/pvc'

/** One app Secret as it should be. */
export interface DesiredSecret {
  readonly namespace: string
  readonly name: string
  /** The PVC it was rendered for (the first, by name, when several render the same Secret alike). */
  readonly pvc: string
  /** The PVC's uid, for the ownerReference (deleting the app deletes its credentials); null: no owner. */
  readonly ownerUid: string | null
  /** Key -> base64 value, as Secret `data` holds it. */
  readonly data: Readonly<Record<string, string>>
  /** sha256 of the data and owner: equal digests, nothing to write. Not reversible into a value. */
  readonly digest: string
}

export interface SecretPlan {
  readonly secrets: readonly DesiredSecret[]
  /** Why some or all Secrets are not planned; names and keys only, never a value. */
  readonly problems: readonly string[]
}

function digestOf(data: Readonly<Record<string, string>>, ownerUid: string | null): string {
  const hash = createHash('sha256')
  for (const key of Object.keys(data).sort()) hash.update(`${key}\0${data[key]}\0`)
  hash.update(ownerUid ?? '')
  return hash.digest('hex')
}

/**
 * The Secrets backup.secret asks for, one per participating PVC (sorted by namespace, name), given the
 * shared Secret's `data` (base64 values as the API returns them; null when it does not exist). No
 * Secret at all when the shared Secret or one of `keys` is missing (a half Secret would make the
 * movers fail in a confusing way); a PVC whose templates cannot be rendered (a missing label) is
 * skipped with a problem; two PVCs that render the same Secret differently keep the first.
 */
export function planBackupSecrets(snapshot: Snapshot, config: BackupSecretConfig, shared: Readonly<Record<string, string>> | null, sharedNamespace: string): SecretPlan {
  if (shared === null) return { secrets: [], problems: [`Secret ${sharedNamespace}/${config.from} (backup.secret.from) does not exist: no repository Secret is written`] }
  const missing = config.keys.filter((key) => !Object.hasOwn(shared, key))
  if (missing.length > 0) return { secrets: [], problems: [`Secret ${sharedNamespace}/${config.from} has no key ${missing.join(', ')} (backup.secret.keys): no repository Secret is written`] }

  const problems: string[] = []
  const byName = new Map<string, DesiredSecret>()
  const pvcs = [...snapshot.cluster.pvcs.values()].filter((pvc) => isParticipating(snapshot, pvc))
    .sort((a, b) => (a.namespace === b.namespace ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.namespace < b.namespace ? -1 : 1))
  for (const pvc of pvcs) {
    const vars = { pvc: pvc.name, namespace: pvc.namespace, labels: pvc.labels }
    const name = renderForPvc(config.name, vars)
    if ('missing' in name) {
      problems.push(`PVC ${pvc.namespace}/${pvc.name}: backup.secret.name needs ${name.missing}`)
      continue
    }
    const data: Record<string, string> = {}
    for (const key of config.keys) data[key] = shared[key]!
    let renderable = true
    for (const [key, template] of Object.entries(config.values)) {
      const value = renderForPvc(template, vars)
      if ('missing' in value) {
        problems.push(`PVC ${pvc.namespace}/${pvc.name}: backup.secret.values.${key} needs ${value.missing}`)
        renderable = false
        continue
      }
      data[key] = Buffer.from(value.value, 'utf8').toString('base64')
    }
    if (!renderable) continue
    const key = objectKey(pvc.namespace, name.value)
    const ownerUid = pvc.uid
    const desired: DesiredSecret = { namespace: pvc.namespace, name: name.value, pvc: pvc.name, ownerUid, data, digest: digestOf(data, ownerUid) }
    const earlier = byName.get(key)
    if (earlier) {
      if (digestOf(earlier.data, null) !== digestOf(data, null)) problems.push(`Secret ${key} renders differently for PVCs ${earlier.pvc} and ${pvc.name}: kept ${earlier.pvc}'s (make backup.secret.name include {{pvc}})`)
      continue
    }
    byName.set(key, desired)
  }
  return { secrets: [...byName.values()], problems }
}

/** The Secret to create: Opaque, our managed-by label, the PVC annotation, owned by the PVC when its uid is known. */
export function secretBody(desired: DesiredSecret): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: desired.name,
      namespace: desired.namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY },
      annotations: { [SECRET_PVC_ANNOTATION]: desired.pvc },
      ...(desired.ownerUid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: desired.pvc, uid: desired.ownerUid }] } : {}),
    },
    type: 'Opaque',
    data: { ...desired.data },
  }
}

/**
 * The update of an existing Secret, as an RFC 6902 JSON patch whose first operation tests our
 * managed-by label: the API server applies it only to a Secret the server created and answers 422 for
 * any other, so a Secret someone else made is never written, and no read of app Secrets is needed.
 * `data` is replaced whole (keys no longer asked for go).
 */
export function secretPatch(desired: DesiredSecret): Array<Record<string, unknown>> {
  return [
    { op: 'test', path: `/metadata/labels/${MANAGED_BY_LABEL.replaceAll('~', '~0').replaceAll('/', '~1')}`, value: MANAGED_BY },
    { op: 'add', path: '/data', value: { ...desired.data } },
  ]
}
