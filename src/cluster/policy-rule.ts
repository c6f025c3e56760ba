// The shape of Kubernetes RBAC rules (rbac.authorization.k8s.io/v1 PolicyRule), as the server
// declares what it reads and writes, the chart renders them, and the tests' fake API server
// enforces them.

/** The API verbs a PolicyRule grants (the ones this server can ever need, plus delete for denials). */
export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete'

/** One rbac/v1 PolicyRule. `resources` are plurals, subresources as `plural/sub` (e.g. `replicationdestinations/status`). */
export interface PolicyRule {
  /** '' is the core group. */
  readonly apiGroups: readonly string[]
  readonly resources: readonly string[]
  readonly verbs: readonly Verb[]
  /** Restricts get/update/patch/delete to these names; create, list and watch cannot be restricted by name. */
  readonly resourceNames?: readonly string[]
}

/**
 * What a ClusterRole (cluster-wide) and a Role (in one namespace) grant together: the RBAC of one
 * ServiceAccount, as the fake API server enforces it and the chart renders it.
 */
export interface RbacRules {
  readonly cluster: readonly PolicyRule[]
  /** namespace -> the rules of Roles bound in it. */
  readonly namespaced: Readonly<Record<string, readonly PolicyRule[]>>
}
