// Reduces Kubernetes objects to the ClusterState admission reads. Shared by the offline
// directory source and (later) the API-server watch, so both publish the same shape.
import { readRdImageShape } from '../admission/rd-never-ready.ts'
import { asObject, type JsonObject } from '../json.ts'
import { objectKey, type ClusterState, type PvcInfo, type ReplicationDestinationInfo, type ReplicationSourceInfo, type TypedReference } from '../state/cluster-state.ts'

type Obj = JsonObject
function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined
}

function latestImage(status: Obj | undefined): TypedReference | null {
  const image = asObject(status?.latestImage)
  const kind = str(image?.kind)
  const name = str(image?.name)
  if (!kind || !name) return null
  const apiGroup = str(image?.apiGroup)
  return apiGroup ? { apiGroup, kind, name } : { kind, name }
}

function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, v] of Object.entries(asObject(value) ?? {})) if (typeof v === 'string') out[key] = v
  return out
}

/**
 * What admission and pre-warm read of a ReplicationDestination: `status.latestImage`, the mover block that is
 * set with its `copyMethod` and `destinationPVC`, the manual trigger and `status.lastManualSync`, and its labels. Empty
 * strings read as absent.
 */
export function replicationDestination(o: Obj, namespace: string, name: string): ReplicationDestinationInfo {
  const spec = asObject(o.spec)
  const { mover, copyMethod, destinationPVC } = readRdImageShape(spec)
  const status = asObject(o.status)
  return {
    namespace, name, latestImage: latestImage(status), copyMethod, mover, destinationPVC,
    manualTrigger: str(asObject(spec?.trigger)?.manual) ?? null,
    lastManualSync: str(status?.lastManualSync) ?? null,
    labels: stringMap(asObject(o.metadata)?.labels),
  }
}

function typedReference(value: unknown): TypedReference | null {
  const ref = asObject(value)
  const kind = str(ref?.kind)
  const name = str(ref?.name)
  if (!kind || !name) return null
  const apiGroup = str(ref?.apiGroup)
  return apiGroup ? { apiGroup, kind, name } : { kind, name }
}

/**
 * What the missed-restore guard and the backup generator read of a PVC: uid, labels, annotations,
 * `dataSourceRef` (else `dataSource`), `createdAt` as epoch ms (null when the timestamp is missing or
 * unparsable), and `status.phase` (null when absent).
 */
export function pvcInfo(o: Obj, namespace: string, name: string): PvcInfo {
  const metadata = asObject(o.metadata)
  const spec = asObject(o.spec)
  const created = str(metadata?.creationTimestamp)
  const createdAt = created === undefined ? null : Date.parse(created)
  return {
    namespace, name,
    uid: str(metadata?.uid) ?? null,
    labels: stringMap(metadata?.labels),
    annotations: stringMap(metadata?.annotations),
    dataSourceRef: typedReference(spec?.dataSourceRef) ?? typedReference(spec?.dataSource),
    createdAt: createdAt === null || Number.isNaN(createdAt) ? null : createdAt,
    phase: str(asObject(o.status)?.phase) ?? null,
  }
}

/**
 * What the missed-restore guard and the backup generator read of a ReplicationSource: its `sourcePVC`,
 * whether `spec.paused` is exactly true, its annotations and labels.
 */
export function replicationSourceInfo(o: Obj, namespace: string, name: string): ReplicationSourceInfo {
  const spec = asObject(o.spec)
  const metadata = asObject(o.metadata)
  return { namespace, name, sourcePVC: str(spec?.sourcePVC) ?? null, paused: spec?.paused === true, ...replicationSourceHealth(o), annotations: stringMap(metadata?.annotations), labels: stringMap(metadata?.labels) }
}

/** An RFC 3339 time as epoch ms; null when absent or unparsable. */
function timeMs(value: unknown): number | null {
  const text = str(value)
  if (text === undefined) return null
  const ms = Date.parse(text)
  return Number.isNaN(ms) ? null : ms
}

const GO_DURATION_UNITS: Readonly<Record<string, number>> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, 'µs': 1e-6, 'μs': 1e-6, ns: 1e-9 }

/** A Go time.Duration string (metav1.Duration: "1h2m3.5s", "850ms", "0s") in seconds; null when it is not one. */
export function goDurationSeconds(value: unknown): number | null {
  const text = str(value)
  if (text === undefined || !/^-?(?:\d+(?:\.\d+)?(?:h|m|s|ms|us|µs|μs|ns))+$/.test(text)) return null
  let seconds = 0
  for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|μs|ns)/g)) seconds += Number(amount) * (GO_DURATION_UNITS[unit!] ?? 0)
  return text.startsWith('-') ? -seconds : seconds
}

/**
 * What backup health (volsync/backup-health.ts) reads of a ReplicationSource: its creation time,
 * `spec.trigger.schedule` and the status of its last sync (`lastSyncTime`, `lastSyncDuration`,
 * `nextSyncTime`, `latestMoverStatus.result`; never the mover's logs).
 */
export function replicationSourceHealth(o: Obj): Pick<ReplicationSourceInfo, 'createdAt' | 'schedule' | 'lastSyncTime' | 'lastSyncDurationSeconds' | 'nextSyncTime' | 'lastResult'> {
  const spec = asObject(o.spec)
  const status = asObject(o.status)
  return {
    createdAt: timeMs(asObject(o.metadata)?.creationTimestamp),
    schedule: str(asObject(spec?.trigger)?.schedule) ?? null,
    lastSyncTime: timeMs(status?.lastSyncTime),
    lastSyncDurationSeconds: goDurationSeconds(status?.lastSyncDuration),
    nextSyncTime: timeMs(status?.nextSyncTime),
    lastResult: str(asObject(status?.latestMoverStatus)?.result) ?? null,
  }
}

/** What admission reads of a Namespace: its labels (Pod Security levels). */
export function namespaceLabelsOf(o: Obj): Readonly<Record<string, string>> {
  return stringMap(asObject(o.metadata)?.labels)
}

export interface ObjectProblem {
  readonly where: string
  readonly message: string
}

/** Builds a ClusterState; objects it does not understand are reported, never thrown. */
export function clusterStateFromObjects(objects: readonly unknown[], origin: string): { state: ClusterState; problems: ObjectProblem[] } {
  const replicationDestinations = new Map<string, ReplicationDestinationInfo>()
  const namespaces = new Set<string>()
  const namespaceLabels = new Map<string, Readonly<Record<string, string>>>()
  const secrets = new Map<string, readonly string[]>()
  const pvcs = new Map<string, PvcInfo>()
  const replicationSources = new Map<string, ReplicationSourceInfo>()
  const problems: ObjectProblem[] = []

  const visit = (value: unknown, where: string): void => {
    const o = asObject(value)
    if (!o) {
      if (value !== null && value !== undefined) problems.push({ where, message: 'not a Kubernetes object (a mapping)' })
      return
    }
    const kind = str(o.kind)
    if (kind?.endsWith('List') && Array.isArray(o.items)) {
      o.items.forEach((item, i) => visit(item, `${where} items[${i}]`))
      return
    }
    const metadata = asObject(o.metadata)
    const name = str(metadata?.name)
    if (!kind || !name) {
      problems.push({ where, message: 'missing kind or metadata.name' })
      return
    }
    const namespace = str(metadata?.namespace) ?? 'default'
    switch (kind) {
      case 'Namespace':
        namespaces.add(name)
        namespaceLabels.set(name, namespaceLabelsOf(o))
        break
      case 'ReplicationDestination':
        replicationDestinations.set(objectKey(namespace, name), replicationDestination(o, namespace, name))
        break
      case 'Secret':
        secrets.set(objectKey(namespace, name), [...Object.keys(asObject(o.data) ?? {}), ...Object.keys(asObject(o.stringData) ?? {})].sort())
        break
      case 'PersistentVolumeClaim':
        pvcs.set(objectKey(namespace, name), pvcInfo(o, namespace, name))
        break
      case 'ReplicationSource':
        replicationSources.set(objectKey(namespace, name), replicationSourceInfo(o, namespace, name))
        break
      default:
        break // other kinds are allowed in the directory and ignored
    }
  }
  objects.forEach((o, i) => visit(o, `object ${i}`))
  return { state: { origin, synced: true, replicationDestinations, namespaces, namespaceLabels, secrets, pvcs, replicationSources, watches: [] }, problems }
}
