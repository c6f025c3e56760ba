// Live cluster state: one supervised list+watch per resource the webhook reads, reduced and published
// as one immutable ClusterState, like the offline DirectoryClusterSource (same publish callback).
import type { KubeConfig } from '@kubernetes/client-node'
import type { LabelSelector } from '../config/schema.ts'
import type { ClusterState, PvcInfo, ReplicationDestinationInfo, ReplicationSourceInfo, WatchHealth } from '../state/cluster-state.ts'
import { pvcInfo, replicationDestination, replicationSourceInfo } from './cluster-objects.ts'
import { InformerSupervisor, type BackoffOptions, type KubeObject, type SupervisorLogger } from './informer-supervisor.ts'

export interface ApiClusterSourceOptions {
  /** Only these PVCs are watched (the participating ones); see labelSelectorString. Default: all. */
  readonly pvcLabelSelector?: string
  /** Restricts the Secret watch; default: all Secrets (key names are kept, never values). */
  readonly secretLabelSelector?: string
  /**
   * Watch Secrets at all (default true). Only prewarm.requireSecret needs them; without it the
   * server needs no permission on Secrets outside its own namespace.
   */
  readonly watchSecrets?: boolean
  /** At most one publish per this many ms; default 100. The first complete sync publishes at once. */
  readonly publishIntervalMs?: number
  readonly watchdogMs?: number
  readonly relistMs?: number
  readonly backoff?: BackoffOptions
  readonly pageSize?: number
  readonly requestTimeoutMs?: number
}

/** metav1.LabelSelector as the `labelSelector` query parameter. Empty selects everything. */
export function labelSelectorString(selector: LabelSelector): string {
  const parts = Object.entries(selector.matchLabels ?? {}).map(([key, value]) => `${key}=${value}`)
  for (const [i, e] of (selector.matchExpressions ?? []).entries()) {
    const values = e.values ?? []
    if ((e.operator === 'In' || e.operator === 'NotIn') && values.length === 0) throw new Error(`matchExpressions[${i}] (${e.key} ${e.operator}) needs at least one value`)
    switch (e.operator) {
      case 'In': parts.push(`${e.key} in (${values.join(',')})`); break
      case 'NotIn': parts.push(`${e.key} notin (${values.join(',')})`); break
      case 'Exists': parts.push(e.key); break
      case 'DoesNotExist': parts.push(`!${e.key}`); break
    }
  }
  return parts.join(',')
}

function metadataOf(o: KubeObject): { namespace: string; name: string } {
  const metadata = (o.metadata ?? {}) as { namespace?: unknown; name?: unknown }
  return { namespace: typeof metadata.namespace === 'string' ? metadata.namespace : '', name: typeof metadata.name === 'string' ? metadata.name : '' }
}

/** Secret reduced to its key names, sorted: the values are dropped on arrival. The API server
 * folds stringData into data; stringData is read too, as the directory source does. */
function secretKeys(o: KubeObject): readonly string[] {
  const keys = (v: unknown): string[] => (v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.keys(v) : [])
  return [...new Set([...keys(o.data), ...keys(o.stringData)])].sort()
}

/** Rebuilds a published map only when its supervisor's objects changed. */
function derived<T, R>(supervisor: InformerSupervisor<T>, build: (entries: Iterable<[string, T]>) => R): () => R {
  let version = -1
  let value: R | undefined
  return () => {
    if (value === undefined || version !== supervisor.version) {
      version = supervisor.version
      value = build(supervisor.entries())
    }
    return value
  }
}

export class ApiClusterSource {
  readonly #publish: (state: ClusterState) => void
  readonly #log: SupervisorLogger
  readonly #origin: string
  readonly #intervalMs: number
  readonly #supervisors: InformerSupervisor<unknown>[] = []
  readonly #build: () => ClusterState
  #timer: NodeJS.Timeout | undefined
  #announced = false
  #running = false

  constructor(kubeConfig: KubeConfig, publish: (state: ClusterState) => void, log: SupervisorLogger, options: ApiClusterSourceOptions = {}) {
    this.#publish = publish
    this.#log = log
    this.#origin = `api-server ${kubeConfig.getCurrentCluster()?.server ?? '(no cluster)'}`
    this.#intervalMs = options.publishIntervalMs ?? 100
    const common = {
      log,
      onChange: () => this.#changed(),
      ...(options.watchdogMs !== undefined ? { watchdogMs: options.watchdogMs } : {}),
      ...(options.relistMs !== undefined ? { relistMs: options.relistMs } : {}),
      ...(options.backoff !== undefined ? { backoff: options.backoff } : {}),
      ...(options.pageSize !== undefined ? { pageSize: options.pageSize } : {}),
      ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
    }
    const watch = <T>(resource: string, path: string, reduce: (o: KubeObject, namespace: string, name: string) => T, labelSelector?: string): InformerSupervisor<T> => {
      const supervisor = new InformerSupervisor<T>(kubeConfig, {
        ...common,
        resource,
        path,
        reduce: (o) => reduce(o, metadataOf(o).namespace, metadataOf(o).name),
        ...(labelSelector ? { labelSelector } : {}),
      })
      this.#supervisors.push(supervisor as InformerSupervisor<unknown>)
      return supervisor
    }
    const volsync = '/apis/volsync.backube/v1alpha1'
    const rds = watch<ReplicationDestinationInfo>('replicationdestinations.volsync.backube', `${volsync}/replicationdestinations`, replicationDestination)
    const rss = watch<ReplicationSourceInfo>('replicationsources.volsync.backube', `${volsync}/replicationsources`, replicationSourceInfo)
    const nss = watch<string>('namespaces', '/api/v1/namespaces', (_o, _ns, name) => name)
    const pvcs = watch<PvcInfo>('persistentvolumeclaims', '/api/v1/persistentvolumeclaims', pvcInfo, options.pvcLabelSelector)
    const secrets = options.watchSecrets === false ? undefined : watch<readonly string[]>('secrets', '/api/v1/secrets', secretKeys, options.secretLabelSelector)

    const replicationDestinations = derived(rds, (entries) => new Map(entries))
    const replicationSources = derived(rss, (entries) => new Map(entries))
    const namespaces = derived(nss, (entries) => new Set([...entries].map(([, name]) => name)))
    const pvcMap = derived(pvcs, (entries) => new Map(entries))
    const noSecrets: ReadonlyMap<string, readonly string[]> = new Map()
    const secretMap = secrets ? derived(secrets, (entries) => new Map(entries)) : () => noSecrets
    this.#build = () => ({
      origin: this.#origin,
      synced: this.loaded,
      replicationDestinations: replicationDestinations(),
      namespaces: namespaces(),
      secrets: secretMap(),
      pvcs: pvcMap(),
      replicationSources: replicationSources(),
      watches: this.health(),
    })
  }

  /** True once the first list of every resource finished. */
  get loaded(): boolean {
    return this.#supervisors.every((s) => s.synced)
  }

  /** The current error of each failing resource, or null. */
  get lastError(): string | null {
    const errors = this.health().filter((h) => h.error !== null).map((h) => `${h.resource}: ${h.error}`)
    return errors.length === 0 ? null : errors.join('; ')
  }

  health(): WatchHealth[] {
    return this.#supervisors.map((s) => s.health())
  }

  /** Starts every watch and returns at once; `loaded` and the first synced publish tell when it is ready. */
  async start(): Promise<void> {
    if (this.#running) return
    this.#running = true
    this.#log.info({ origin: this.#origin }, 'watching the API server')
    for (const supervisor of this.#supervisors) supervisor.start()
  }

  async stop(): Promise<void> {
    this.#running = false
    clearTimeout(this.#timer)
    this.#timer = undefined
    await Promise.all(this.#supervisors.map((s) => s.stop()))
  }

  #changed(): void {
    if (!this.#running) return
    if (!this.#announced && this.loaded) {
      // Readiness waits on this one: no coalescing delay.
      this.#announced = true
      clearTimeout(this.#timer)
      this.#timer = undefined
      this.#publishNow()
      this.#log.info({ resources: this.#supervisors.length }, 'cluster state synced from the API server')
      return
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined
      this.#publishNow()
    }, this.#intervalMs)
  }

  #publishNow(): void {
    if (this.#running) this.#publish(this.#build())
  }
}
