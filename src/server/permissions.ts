// permissions(config): everything the server reads and writes in the API, assembled from what each
// loop the runtime starts for that config declares. The chart renders its ClusterRole and Role
// from this, and the end-to-end tests run the server against a fake API server that enforces
// exactly these rules (403 for anything else), so least privilege is proved by running.
// Admission itself needs nothing: decisions come from the watched state.
import { watchSelection } from '../cluster/api-source.ts'
import type { PolicyRule, RbacRules, Verb } from '../cluster/policy-rule.ts'
import type { Config } from '../config/schema.ts'

/** One grant and why it is needed. */
export interface Permission {
  /** `cluster`: a ClusterRole rule; `namespace`: a Role rule in the server's own namespace (kube.namespace). */
  readonly scope: 'cluster' | 'namespace'
  readonly rule: PolicyRule
  /** The loop that uses it. */
  readonly loop: string
  /** Used only by the Lease holder. */
  readonly leaderOnly: boolean
  readonly why: string
}

export interface Permissions {
  /** The server's own namespace, where the namespace-scoped grants apply. */
  readonly namespace: string
  readonly grants: readonly Permission[]
}

const VOLSYNC = 'volsync.backube'

function grant(loop: string, scope: Permission['scope'], apiGroup: string, resource: string, verbs: readonly Verb[], why: string, extra: { leaderOnly?: boolean; resourceNames?: readonly string[] } = {}): Permission {
  return {
    scope, loop, why, leaderOnly: extra.leaderOnly ?? false,
    rule: { apiGroups: [apiGroup], resources: [resource], verbs, ...(extra.resourceNames ? { resourceNames: extra.resourceNames } : {}) },
  }
}

/** The cluster source (every replica): one list+watch per resource of watchSelection(config). */
function clusterWatch(config: Config): Permission[] {
  const selection = watchSelection(config)
  const watch: readonly Verb[] = ['list', 'watch']
  return [
    grant('cluster', 'cluster', VOLSYNC, 'replicationdestinations', watch, 'admission reads latestImage; pre-warm sees what exists'),
    grant('cluster', 'cluster', VOLSYNC, 'replicationsources', watch, 'the missed-restore guard finds the PVC\'s ReplicationSource'),
    grant('cluster', 'cluster', '', 'namespaces', watch, 'pre-warm creates an RD only where its namespace exists'),
    grant('cluster', 'cluster', '', 'persistentvolumeclaims', watch, 'the participating PVCs (label-selected by pvc.selector): guard and /status'),
    ...(selection.watchSecrets ? [grant('cluster', 'cluster', '', 'secrets', watch, 'prewarm.requireSecret: key names only, values are dropped on arrival')] : []),
  ]
}

/** Leader election: one Lease in the server's namespace (read, created once, renewed by update). */
function leaderElection(config: Config): Permission[] {
  const names = [config.kube.leaseName]
  return [
    grant('leader-election', 'namespace', 'coordination.k8s.io', 'leases', ['get', 'update'], 'leader election: read and renew the Lease', { resourceNames: names }),
    grant('leader-election', 'namespace', 'coordination.k8s.io', 'leases', ['create'], 'leader election: create the Lease the first time'),
  ]
}

/** Pre-warm (leader): creates RDs and sets their manual trigger with a merge patch. */
function prewarm(config: Config): Permission[] {
  if (!config.prewarm.enabled) return []
  return [grant('prewarm', 'cluster', VOLSYNC, 'replicationdestinations', ['create', 'patch'], 'pre-warm: create an RD for a proven backup, set trigger.manual', { leaderOnly: true })]
}

/** Missed-restore guard (leader): one Event per missed restore; with pauseSource, pauses the RS. */
function guard(config: Config): Permission[] {
  return [
    grant('guard', 'cluster', '', 'events', ['create'], 'one MissedRestore Event per PVC that started empty over a backup', { leaderOnly: true }),
    ...(config.guard.pauseSource ? [grant('guard', 'cluster', VOLSYNC, 'replicationsources', ['patch'], 'guard.pauseSource: spec.paused on the missed PVC\'s ReplicationSource', { leaderOnly: true })] : []),
  ]
}

/**
 * Backup generator (leader, backup.enabled): server-side apply of ReplicationSources. Apply is a PATCH
 * (verb `patch`); when the object does not exist the API server creates it and also checks `create`
 * for it (k8s.io/apiserver handlers/patch.go, createAuthorizerAttributes); the paused create of a
 * missed restore's RS is a plain `create`. Its warning Events use the guard's `events: create`.
 */
function backup(config: Config): Permission[] {
  if (!config.backup.enabled) return []
  return [grant('backup', 'cluster', VOLSYNC, 'replicationsources', ['create', 'patch'], 'backup generator: create and apply the ReplicationSource of every participating PVC', { leaderOnly: true })]
}

/**
 * Repository Secret per app (leader, backup.secret): read the shared Secret by name in the server's
 * namespace; create app Secrets and patch them (a JSON patch that tests our managed-by label, so only
 * ours change). Cluster-wide: the Secrets live in every app namespace under templated names, and RBAC
 * cannot narrow create by name or patch by label. No get/list/watch on app Secrets.
 */
function backupSecret(config: Config): Permission[] {
  const secret = config.backup.secret
  if (!secret) return []
  return [
    grant('backup-secret', 'namespace', '', 'secrets', ['get'], 'backup.secret: read the shared credentials to copy', { leaderOnly: true, resourceNames: [secret.from] }),
    grant('backup-secret', 'cluster', '', 'secrets', ['create', 'patch'], 'backup.secret: create the repository Secret of each app; update only those labelled as ours (opt-in)', { leaderOnly: true }),
  ]
}

/** Self-managed TLS: its Secret (every replica reads, the leader writes) and the caBundle of its own webhook configurations. */
function selfManagedTls(config: Config): Permission[] {
  const tls = config.server.tls.selfManaged
  if (!tls) return []
  return [
    grant('tls', 'namespace', '', 'secrets', ['get'], 'self-managed TLS: every replica serves the pair in the Secret', { resourceNames: [tls.secretName] }),
    grant('tls', 'namespace', '', 'secrets', ['update'], 'self-managed TLS: renew the pair', { leaderOnly: true, resourceNames: [tls.secretName] }),
    grant('tls', 'namespace', '', 'secrets', ['create'], 'self-managed TLS: create the Secret the first time', { leaderOnly: true }),
    ...(tls.mutatingWebhookConfigurations.length > 0 ? [grant('tls', 'cluster', 'admissionregistration.k8s.io', 'mutatingwebhookconfigurations', ['get', 'patch'], 'self-managed TLS: write the caBundle', { leaderOnly: true, resourceNames: tls.mutatingWebhookConfigurations })] : []),
    ...(tls.validatingWebhookConfigurations.length > 0 ? [grant('tls', 'cluster', 'admissionregistration.k8s.io', 'validatingwebhookconfigurations', ['get', 'patch'], 'self-managed TLS: write the caBundle', { leaderOnly: true, resourceNames: tls.validatingWebhookConfigurations })] : []),
  ]
}

/**
 * Every grant the server needs with this config. Pure. Offline (state.directory) it talks to no
 * API server and needs nothing.
 */
export function permissions(config: Config): Permissions {
  const grants = config.state.directory !== undefined ? [] : [...clusterWatch(config), ...leaderElection(config), ...prewarm(config), ...guard(config), ...backup(config), ...backupSecret(config), ...selfManagedTls(config)]
  return { namespace: config.kube.namespace, grants }
}

/** The rules of a ClusterRole (cluster scope) and a Role in the server's namespace, in grant order. */
export function rbacRules(p: Permissions): RbacRules {
  const rules = (scope: Permission['scope']): PolicyRule[] => p.grants.filter((g) => g.scope === scope).map((g) => g.rule)
  return { cluster: rules('cluster'), namespaced: { [p.namespace]: rules('namespace') } }
}
