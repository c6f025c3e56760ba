// The API server's rules for a PVC's two data-source fields (KEP 1495), modelled so that the PVC
// rule decides on the PVC as it will be stored, not as it was sent.
//
// What this follows (kubernetes/kubernetes, read for this module):
// - apiserver `endpoints/handlers/create.go`: mutating admission runs on the object as decoded, before
//   `rest.Create`; `BeforeCreate` then calls the strategy's `PrepareForCreate`, and validation and the
//   validating webhooks run after it. So a mutating webhook sees `spec.dataSource` before the API server
//   has dropped or mirrored anything.
// - `pkg/registry/core/persistentvolumeclaim/strategy.go` `PrepareForCreate`: `DropDisabledFields`, then
//   `EnforceDataSourceBackwardsCompatibility`, then `NormalizeDataSources`.
// - `pkg/api/persistentvolumeclaim/util.go`:
//   - `DropDisabledFields`: a `dataSourceRef` with a namespace is dropped unless the (alpha, off by
//     default) CrossNamespaceVolumeDataSource gate is on;
//   - `EnforceDataSourceBackwardsCompatibility` (CREATE: no old object): when `dataSourceRef` is not
//     set, a `dataSource` that is neither a core PersistentVolumeClaim (empty apiGroup) nor a
//     `snapshot.storage.k8s.io` VolumeSnapshot is silently dropped ("as if an empty PVC had been
//     requested");
//   - `NormalizeDataSources` (AnyVolumeDataSource, on by default since 1.24): only `dataSource` set ->
//     copied into `dataSourceRef`; only `dataSourceRef` set and no namespace -> copied into `dataSource`.
// - `pkg/apis/core/validation/validation.go` `ValidatePersistentVolumeClaimSpec`: each reference needs a
//   name and a kind, an empty apiGroup is allowed only for kind PersistentVolumeClaim; when both fields
//   are set (and dataSourceRef has no namespace) they must be equal - apiGroup (nil and "" differ: a
//   reflect.DeepEqual of the pointers), kind and name - else the request is rejected with "must match
//   dataSourceRef".
// Pure: no I/O; the feature gates are taken at their defaults (AnyVolumeDataSource on,
// CrossNamespaceVolumeDataSource off).
import { asObject, asString, type JsonObject } from '../json.ts'

/** One data-source reference as sent. `apiGroup` undefined is an absent field (a nil pointer upstream). */
export interface DataSourceReference {
  readonly apiGroup?: string
  readonly kind: string
  readonly name: string
  /** Only dataSourceRef has one (cross-namespace data sources). */
  readonly namespace?: string
}

/** The two fields of a PVC spec as sent; null when absent. */
export interface SentDataSources {
  readonly dataSource: DataSourceReference | null
  readonly dataSourceRef: DataSourceReference | null
}

/** What the API server makes of the pair on CREATE. */
export type StoredDataSources =
  | {
    readonly state: 'accepted'
    /** The data source the stored PVC has (in both fields, unless cross-namespace); null: an empty volume. */
    readonly source: DataSourceReference | null
    /** A `dataSource` the API server drops after admission (a kind it does not keep there); null: none. */
    readonly dropped: DataSourceReference | null
  }
  | {
    readonly state: 'rejected'
    /** Why, in the API server's words where it has them. */
    readonly reason: string
  }

const SNAPSHOT_GROUP = 'snapshot.storage.k8s.io'

function readReference(value: unknown): DataSourceReference | null {
  const ref = asObject(value)
  if (!ref) return null
  const apiGroup = asString(ref.apiGroup)
  const namespace = asString(ref.namespace)
  return {
    ...(apiGroup !== undefined ? { apiGroup } : {}),
    kind: asString(ref.kind) ?? '',
    name: asString(ref.name) ?? '',
    ...(namespace !== undefined ? { namespace } : {}),
  }
}

/** `spec.dataSource` and `spec.dataSourceRef` of a PVC as sent (a JSON null reads as absent). */
export function readSentDataSources(spec: JsonObject | undefined): SentDataSources {
  return { dataSource: readReference(spec?.dataSource), dataSourceRef: readReference(spec?.dataSourceRef) }
}

/** The two kinds `spec.dataSource` keeps on its own (util.go dataSourceIsPvcOrSnapshot). */
export function isPvcOrSnapshot(ref: DataSourceReference): boolean {
  const group = ref.apiGroup ?? ''
  return (ref.kind === 'PersistentVolumeClaim' && group === '') || (ref.kind === 'VolumeSnapshot' && group === SNAPSHOT_GROUP)
}

/** validation.go isDataSourceEqualDataSourceRef: apiGroup presence and value, kind, name. */
export function sameReference(a: DataSourceReference, b: DataSourceReference): boolean {
  return a.apiGroup === b.apiGroup && a.kind === b.kind && a.name === b.name
}

/** "volsync.backube ReplicationDestination app-dst"; "(core) PersistentVolumeClaim data". */
export function describeReference(ref: DataSourceReference): string {
  return `${ref.apiGroup ? ref.apiGroup : '(core)'} ${ref.kind || '(no kind)'} ${ref.name || '(no name)'}`
}

function invalidReference(ref: DataSourceReference, field: string): string | null {
  if (ref.name === '') return `spec.${field}.name is required`
  if (ref.kind === '') return `spec.${field}.kind is required`
  if (!ref.apiGroup && ref.kind !== 'PersistentVolumeClaim') return `spec.${field}: kind ${ref.kind} must be 'PersistentVolumeClaim' when referencing the default apiGroup (set apiGroup)`
  return null
}

/**
 * The data source a PVC CREATE will be stored with, by the API server's rules (this file's header):
 * `accepted` with the surviving `source` (null: an empty volume) and any `dataSource` it `dropped`, or
 * `rejected` when the request will fail validation (a pair that disagrees, a reference without a name,
 * kind, or an apiGroup its kind needs). Pure; never throws.
 */
export function storedDataSources(sent: SentDataSources): StoredDataSources {
  let { dataSource, dataSourceRef } = sent
  // DropDisabledFields: cross-namespace references need an alpha gate that is off by default.
  if (dataSourceRef?.namespace) dataSourceRef = null
  // EnforceDataSourceBackwardsCompatibility (CREATE).
  let dropped: DataSourceReference | null = null
  if (dataSourceRef === null && dataSource !== null && !isPvcOrSnapshot(dataSource)) {
    dropped = dataSource
    dataSource = null
  }
  // NormalizeDataSources: whichever one is set fills the other.
  const source = dataSourceRef ?? dataSource
  // ValidatePersistentVolumeClaimSpec.
  if (dataSource !== null) {
    const invalid = invalidReference(dataSource, 'dataSource')
    if (invalid) return { state: 'rejected', reason: invalid }
  }
  if (dataSourceRef !== null) {
    const invalid = invalidReference(dataSourceRef, 'dataSourceRef')
    if (invalid) return { state: 'rejected', reason: invalid }
  }
  if (dataSource !== null && dataSourceRef !== null && !sameReference(dataSource, dataSourceRef)) {
    return {
      state: 'rejected',
      reason: `spec.dataSource (${describeReference(dataSource)}) must match spec.dataSourceRef (${describeReference(dataSourceRef)})`,
    }
  }
  return { state: 'accepted', source, dropped }
}

/**
 * Points a PVC spec (a copy the caller owns; written in place) at `ref` so that the pair is consistent
 * once stored: `dataSourceRef` = `ref`, and a `dataSource` that is present is replaced by the same
 * reference (were it left different, validation would reject the pair; left absent, the API server
 * mirrors `dataSourceRef` into it).
 */
export function pointSpecAt(spec: JsonObject, ref: { readonly apiGroup: string; readonly kind: string; readonly name: string }): void {
  spec.dataSourceRef = { apiGroup: ref.apiGroup, kind: ref.kind, name: ref.name }
  if (spec.dataSource !== undefined) spec.dataSource = { apiGroup: ref.apiGroup, kind: ref.kind, name: ref.name }
}

/** Removes both data-source fields from a PVC spec (a copy the caller owns; written in place). */
export function clearSpecDataSources(spec: JsonObject): void {
  delete spec.dataSourceRef
  delete spec.dataSource
}
