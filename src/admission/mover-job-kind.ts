// Which VolSync mover a Job is, read only from what VolSync itself sets (volsync-reference.md
// 2.1-2.3): labels, the controlling ownerReference and the container names. Job names are never
// parsed: VolSync hashes names longer than 63 characters.
import { asArray, asObject, asString, type JsonObject } from '../json.ts'
import { stringMap } from './object-fields.ts'
import {
  CREATED_BY_LABEL,
  KOPIA_CONTAINER,
  KOPIA_MAINTENANCE_CONTAINER,
  KOPIA_MAINTENANCE_LABEL,
  RD_KIND,
  RESTIC_CONTAINER,
  RS_KIND,
  VOLSYNC_API_GROUP,
} from './volsync-objects.ts'

export type MoverJobKind = 'backup' | 'restore' | 'maintenance'

export interface MoverJob {
  readonly kind: MoverJobKind
  /** `kopia`, `restic` or `kopia-maintenance`. */
  readonly container: string
  /** Where the mover container sits in spec.template.spec.containers. */
  readonly containerIndex: number
}

export type MoverJobClassification =
  | { readonly job: MoverJob; readonly reason?: undefined }
  | { readonly job: null; readonly reason: string }

const SRC_DST_CONTAINERS: ReadonlySet<string> = new Set([KOPIA_CONTAINER, RESTIC_CONTAINER])

function notMover(reason: string): MoverJobClassification {
  return { job: null, reason }
}

function apiGroup(apiVersion: string | undefined): string {
  if (!apiVersion) return ''
  const slash = apiVersion.indexOf('/')
  return slash < 0 ? '' : apiVersion.slice(0, slash)
}

/** The ownerReference with controller: true (at most one is allowed by the API server). */
function controllingOwner(job: JsonObject): JsonObject | undefined {
  for (const entry of asArray(asObject(job.metadata)?.ownerReferences)) {
    const ref = asObject(entry)
    if (ref?.controller === true) return ref
  }
  return undefined
}

/** Classifies a Job; when it is not a kopia/restic/kopia-maintenance mover, says why. */
export function classifyMoverJob(job: JsonObject): MoverJobClassification {
  const labels = stringMap(job, 'labels')
  const containers = asObject(asObject(asObject(job.spec)?.template)?.spec)?.containers
  const isMaintenance = labels[KOPIA_MAINTENANCE_LABEL] === 'true'
  if (!isMaintenance && labels[CREATED_BY_LABEL] !== 'volsync') {
    return notMover(`not a VolSync mover Job: neither ${CREATED_BY_LABEL}=volsync nor ${KOPIA_MAINTENANCE_LABEL}=true`)
  }
  if (!Array.isArray(containers)) return notMover('malformed Job: spec.template.spec.containers is not a list')

  if (isMaintenance) {
    // The container is named, not positioned: moverPodLabels etc. never add containers, but match by name anyway.
    const index = containers.findIndex((c) => asObject(c)?.name === KOPIA_MAINTENANCE_CONTAINER)
    if (index < 0) return notMover(`labelled ${KOPIA_MAINTENANCE_LABEL}=true but has no container ${KOPIA_MAINTENANCE_CONTAINER}`)
    return { job: { kind: 'maintenance', container: KOPIA_MAINTENANCE_CONTAINER, containerIndex: index } }
  }

  const owner = controllingOwner(job)
  if (!owner) return notMover('VolSync Job without a controlling ownerReference')
  const ownerKind = asString(owner.kind)
  if (apiGroup(asString(owner.apiVersion)) !== VOLSYNC_API_GROUP || (ownerKind !== RS_KIND && ownerKind !== RD_KIND)) {
    return notMover(`VolSync Job controlled by ${asString(owner.apiVersion) ?? '?'} ${ownerKind ?? '?'}, not a ReplicationSource/ReplicationDestination`)
  }
  // rsync, rsync-tls, rclone and syncthing movers share the label and owners; only the container tells.
  const name = asString(asObject(containers[0])?.name)
  if (name === undefined || !SRC_DST_CONTAINERS.has(name)) {
    return notMover(`VolSync ${name ?? 'unnamed'} mover Job (only ${KOPIA_CONTAINER} and ${RESTIC_CONTAINER} movers are handled)`)
  }
  return { job: { kind: ownerKind === RS_KIND ? 'backup' : 'restore', container: name, containerIndex: 0 } }
}

/** 'backup' | 'restore' | 'maintenance' for a kopia/restic mover Job, else null. */
export function moverJobKind(job: JsonObject): MoverJobKind | null {
  return classifyMoverJob(job).job?.kind ?? null
}
