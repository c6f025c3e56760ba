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
}

export interface ClusterState {
  /** Where it came from, for /status. */
  readonly origin: string
  /** True once every resource was listed at least once. */
  readonly synced: boolean
  /** `namespace/name` -> RD. */
  readonly replicationDestinations: ReadonlyMap<string, ReplicationDestinationInfo>
  readonly namespaces: ReadonlySet<string>
  /** `namespace/name` of Secrets, keys only (never values). */
  readonly secrets: ReadonlyMap<string, readonly string[]>
}

export const EMPTY_CLUSTER: ClusterState = {
  origin: 'none',
  synced: false,
  replicationDestinations: new Map(),
  namespaces: new Set(),
  secrets: new Map(),
}

export function objectKey(namespace: string, name: string): string {
  return `${namespace}/${name}`
}
