// What admission needs to know about the cluster, reduced from the Kubernetes objects.

export interface TypedReference {
  readonly apiGroup?: string
  readonly kind: string
  readonly name: string
}

export interface ReplicationDestinationInfo {
  readonly namespace: string
  readonly name: string
  readonly latestImage: TypedReference | null
  /** copyMethod of the mover block (Snapshot is what the volume populator needs). */
  readonly copyMethod: string | null
  /** The mover block that is set (`kopia`, `restic`, ...); absent or null when not known. */
  readonly mover?: string | null
  /** The mover block's destinationPVC, when set (admission/rd-never-ready.ts). */
  readonly destinationPVC?: string | null
  /** spec.trigger.manual and status.lastManualSync: equal means the manual sync finished (idle). */
  readonly manualTrigger?: string | null
  readonly lastManualSync?: string | null
  readonly labels?: Readonly<Record<string, string>>
}

/** A PersistentVolumeClaim, reduced to what the missed-restore guard and /status need. */
export interface PvcInfo {
  readonly namespace: string
  readonly name: string
  readonly uid: string | null
  readonly labels: Readonly<Record<string, string>>
  readonly annotations: Readonly<Record<string, string>>
  /** spec.dataSourceRef (or the older spec.dataSource), when set. */
  readonly dataSourceRef: TypedReference | null
  /** metadata.creationTimestamp, ms since epoch; null when absent. */
  readonly createdAt: number | null
  /**
   * status.phase (`Pending`, `Bound`, `Lost`); null or absent when not known. The backup generator
   * waits for `Bound` before backing up a PVC that is still being restored (its dataSourceRef).
   */
  readonly phase?: string | null
}

export interface ReplicationSourceInfo {
  readonly namespace: string
  readonly name: string
  readonly sourcePVC: string | null
  readonly paused: boolean
  /** metadata.annotations (the missed-restore guard reads its own marks back from the cluster). */
  readonly annotations?: Readonly<Record<string, string>>
  /** metadata.creationTimestamp, ms since epoch (a never-successful RS is overdue counted from it); null when absent. */
  readonly createdAt?: number | null
  /** spec.trigger.schedule (a cron line); null for a manual or continuous RS. */
  readonly schedule?: string | null
  /**
   * status.lastSyncTime, ms since epoch: VolSync sets it only when a sync completes successfully, so it
   * is the last successful backup; null before the first.
   */
  readonly lastSyncTime?: number | null
  /** status.lastSyncDuration (a Go duration such as "1m30.5s") in seconds; null when absent or unparsable. */
  readonly lastSyncDurationSeconds?: number | null
  /** status.nextSyncTime, ms since epoch; null when not scheduled. */
  readonly nextSyncTime?: number | null
  /** status.latestMoverStatus.result (`Successful` or `Failed`); null before a mover finished. The logs are not kept. */
  readonly lastResult?: string | null
  /** metadata.labels (the backup generator writes only ReplicationSources labelled as managed by it). */
  readonly labels?: Readonly<Record<string, string>>
}

/** How fresh one watched resource is, for /status and metrics (the API-server source fills it). */
export interface WatchHealth {
  readonly resource: string
  /** ms since epoch of the last successful list; null before the first. */
  readonly lastList: number | null
  /** ms since epoch of the last event or bookmark; null before the first. */
  readonly lastEvent: number | null
  readonly restarts: number
  readonly error: string | null
}

export interface ClusterState {
  /** Where it came from, for /status. */
  readonly origin: string
  /** True once every resource was listed at least once. */
  readonly synced: boolean
  /** `namespace/name` -> RD. */
  readonly replicationDestinations: ReadonlyMap<string, ReplicationDestinationInfo>
  readonly namespaces: ReadonlySet<string>
  /**
   * Namespace name -> its labels (the same namespaces as `namespaces`), for what admission must check
   * against a namespace, e.g. its Pod Security level (`pod-security.kubernetes.io/enforce`). Absent in a
   * hand-built state: the labels are not known.
   */
  readonly namespaceLabels?: ReadonlyMap<string, Readonly<Record<string, string>>>
  /** `namespace/name` of Secrets, keys only (never values). */
  readonly secrets: ReadonlyMap<string, readonly string[]>
  /** `namespace/name` -> PVC (the API-server source watches participating PVCs only). */
  readonly pvcs: ReadonlyMap<string, PvcInfo>
  /** `namespace/name` -> ReplicationSource. */
  readonly replicationSources: ReadonlyMap<string, ReplicationSourceInfo>
  /** Per watched resource; empty for the offline directory. */
  readonly watches: readonly WatchHealth[]
}

export const EMPTY_CLUSTER: ClusterState = {
  origin: 'none',
  synced: false,
  replicationDestinations: new Map(),
  namespaces: new Set(),
  namespaceLabels: new Map(),
  secrets: new Map(),
  pvcs: new Map(),
  replicationSources: new Map(),
  watches: [],
}

/** The `namespace/name` key of every map in ClusterState. */
export function objectKey(namespace: string, name: string): string {
  return `${namespace}/${name}`
}
