// Live cluster state: one supervised list+watch per resource the webhook reads, reduced and published
// as one immutable ClusterState, like the offline DirectoryClusterSource (same publish callback).
import type { KubeConfig } from '@kubernetes/client-node'
import type { Config, LabelSelector } from '../config/schema.ts'
import { asObject } from '../json.ts'
import type { Log } from '../log.ts'
import { type LoopHealth, untilAborted } from '../loop.ts'
import type { ClusterState, PvcInfo, ReplicationDestinationInfo, ReplicationSourceInfo, WatchHealth } from '../state/cluster-state.ts'
import { namespaceLabelsOf, pvcInfo, replicationDestination, replicationSourceInfo } from './cluster-objects.ts'
import { InformerSupervisor, type BackoffOptions, type KubeObject } from './informer-supervisor.ts'

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
  const keys = (v: unknown): string[] => Object.keys(asObject(v) ?? {})
  return [...new Set([...keys(o.data), ...keys(o.stringData)])].sort()
}

/** The watches that can change with config; the others are fixed. */
export interface WatchSelection {
  /** The participating PVCs' label selector (labelSelectorString of pvc.selector); '' selects all. */
  readonly pvcLabelSelector: string
  /** Only prewarm.requireSecret needs Secrets: without it, no Secret watch and no RBAC for Secrets. */
  readonly watchSecrets: boolean
}

/** What config asks the cluster source to watch. Pure; also the source of its RBAC (see permissions). */
export function watchSelection(config: Config): WatchSelection {
  return { pvcLabelSelector: labelSelectorString(config.pvc.selector), watchSecrets: config.prewarm.requireSecret !== undefined }
}

/**
 * One resource's watch, restartable with another label selector without a gap: the new watch
 * lists in the background while the old one keeps serving, and replaces it once it has synced.
 */
class WatchedResource<T, R> {
  readonly #make: (labelSelector: string | undefined) => InformerSupervisor<T>
  readonly #build: (entries: Iterable<[string, T]>) => R
  readonly #empty: R
  #active: { readonly selector: string | undefined; readonly supervisor: InformerSupervisor<T> } | undefined
  #pending: { readonly selector: string | undefined; readonly supervisor: InformerSupervisor<T> } | undefined
  #enabled = false
  #running = false
  #cache: { readonly supervisor: InformerSupervisor<T>; readonly version: number; readonly value: R } | undefined

  constructor(make: (labelSelector: string | undefined) => InformerSupervisor<T>, build: (entries: Iterable<[string, T]>) => R, empty: R) {
    this.#make = make
    this.#build = build
    this.#empty = empty
  }

  /** Enabled and synced, or disabled (nothing to wait for). */
  get synced(): boolean {
    return !this.#enabled || (this.#active?.supervisor.synced ?? false)
  }

  get enabled(): boolean {
    return this.#enabled
  }

  /** The reduced objects of the serving watch, rebuilt only when they changed. */
  value(): R {
    const supervisor = this.#active?.supervisor
    if (!this.#enabled || !supervisor) return this.#empty
    if (this.#cache?.supervisor !== supervisor || this.#cache.version !== supervisor.version) {
      this.#cache = { supervisor, version: supervisor.version, value: this.#build(supervisor.entries()) }
    }
    return this.#cache.value
  }

  health(): WatchHealth | undefined {
    return this.#enabled ? this.#active?.supervisor.health() : undefined
  }

  /** Sets what to watch; a changed selector starts a replacement watch (see promote). */
  select(enabled: boolean, selector: string | undefined): void {
    this.#enabled = enabled
    if (!enabled) {
      void this.#active?.supervisor.stop()
      void this.#pending?.supervisor.stop()
      this.#active = this.#pending = undefined
      return
    }
    const target = this.#pending ?? this.#active
    if (target && target.selector === selector) return
    void this.#pending?.supervisor.stop()
    this.#pending = undefined
    const next = { selector, supervisor: this.#make(selector) }
    if (this.#active) this.#pending = next
    else this.#active = next
    if (this.#running) next.supervisor.start()
  }

  /** A replacement watch that has synced takes over; returns whether it did. */
  promote(): boolean {
    if (!this.#pending?.supervisor.synced) return false
    void this.#active?.supervisor.stop()
    this.#active = this.#pending
    this.#pending = undefined
    return true
  }

  start(): void {
    this.#running = true
    this.#active?.supervisor.start()
    this.#pending?.supervisor.start()
  }

  async stop(): Promise<void> {
    this.#running = false
    await Promise.all([this.#active?.supervisor.stop(), this.#pending?.supervisor.stop()])
  }
}

/**
 * The live cluster state: a Loop (see server/loop.ts) that publishes one ClusterState, with the
 * PVC and Secret watches following config (reconfigure) without dropping what is already known.
 */
export class ApiClusterSource {
  readonly name = 'cluster'
  readonly leaderOnly = false
  readonly #publish: (state: ClusterState) => void
  readonly #log: Pick<Log, 'info' | 'warn'>
  readonly #origin: string
  readonly #intervalMs: number
  readonly #secretLabelSelector: string | undefined
  readonly #resources: WatchedResource<unknown, unknown>[] = []
  readonly #pvcs: WatchedResource<PvcInfo, ReadonlyMap<string, PvcInfo>>
  readonly #secrets: WatchedResource<readonly string[], ReadonlyMap<string, readonly string[]>>
  readonly #build: () => ClusterState
  #timer: NodeJS.Timeout | undefined
  #announced = false
  #running = false
  #loadedOnce = false

  /** The constructor only prepares the watches; run() (or start()) opens them. */
  constructor(kubeConfig: KubeConfig, publish: (state: ClusterState) => void, log: Pick<Log, 'info' | 'warn'>, options: ApiClusterSourceOptions = {}) {
    this.#publish = publish
    this.#log = log
    this.#origin = `api-server ${kubeConfig.getCurrentCluster()?.server ?? '(no cluster)'}`
    this.#intervalMs = options.publishIntervalMs ?? 100
    this.#secretLabelSelector = options.secretLabelSelector
    const common = {
      log,
      onChange: () => this.#changed(),
      ...(options.watchdogMs !== undefined ? { watchdogMs: options.watchdogMs } : {}),
      ...(options.relistMs !== undefined ? { relistMs: options.relistMs } : {}),
      ...(options.backoff !== undefined ? { backoff: options.backoff } : {}),
      ...(options.pageSize !== undefined ? { pageSize: options.pageSize } : {}),
      ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
    }
    const watch = <T, R>(resource: string, path: string, reduce: (o: KubeObject, namespace: string, name: string) => T, build: (entries: Iterable<[string, T]>) => R, empty: R): WatchedResource<T, R> => {
      const make = (labelSelector: string | undefined) => new InformerSupervisor<T>(kubeConfig, {
        ...common,
        resource,
        path,
        reduce: (o) => reduce(o, metadataOf(o).namespace, metadataOf(o).name),
        ...(labelSelector ? { labelSelector } : {}),
      })
      const watched = new WatchedResource<T, R>(make, build, empty)
      this.#resources.push(watched as unknown as WatchedResource<unknown, unknown>)
      return watched
    }
    const toMap = <T>(entries: Iterable<[string, T]>): ReadonlyMap<string, T> => new Map(entries)
    const volsync = '/apis/volsync.backube/v1alpha1'
    const rds = watch('replicationdestinations.volsync.backube', `${volsync}/replicationdestinations`, replicationDestination, toMap<ReplicationDestinationInfo>, new Map())
    const rss = watch('replicationsources.volsync.backube', `${volsync}/replicationsources`, replicationSourceInfo, toMap<ReplicationSourceInfo>, new Map())
    // One watch, one built value per change: the names and the labels keep their identity between changes.
    type Namespaces = { readonly names: ReadonlySet<string>; readonly labels: ReadonlyMap<string, Readonly<Record<string, string>>> }
    const nss = watch<{ name: string; labels: Readonly<Record<string, string>> }, Namespaces>('namespaces', '/api/v1/namespaces', (o, _ns, name) => ({ name, labels: namespaceLabelsOf(o) }), (entries) => {
      const list = [...entries].map(([, ns]) => ns)
      return { names: new Set(list.map((ns) => ns.name)), labels: new Map(list.map((ns) => [ns.name, ns.labels])) }
    }, { names: new Set<string>(), labels: new Map() })
    this.#pvcs = watch('persistentvolumeclaims', '/api/v1/persistentvolumeclaims', pvcInfo, toMap<PvcInfo>, new Map())
    this.#secrets = watch('secrets', '/api/v1/secrets', secretKeys, toMap<readonly string[]>, new Map())
    for (const fixed of [rds, rss, nss]) fixed.select(true, undefined)
    this.reconfigureWatches({ pvcLabelSelector: options.pvcLabelSelector ?? '', watchSecrets: options.watchSecrets ?? true })
    this.#build = () => ({
      origin: this.#origin,
      synced: this.#resources.every((r) => r.synced),
      replicationDestinations: rds.value(),
      namespaces: nss.value().names,
      namespaceLabels: nss.value().labels,
      secrets: this.#secrets.value(),
      pvcs: this.#pvcs.value(),
      replicationSources: rss.value(),
      watches: this.watches(),
    })
  }

  /** True once every watched resource has been listed once since start; never goes back. */
  get loaded(): boolean {
    if (!this.#loadedOnce && this.#resources.every((r) => r.synced)) this.#loadedOnce = true
    return this.#loadedOnce
  }

  /** The current error of each failing resource, or null. */
  get lastError(): string | null {
    const errors = this.watches().filter((h) => h.error !== null).map((h) => `${h.resource}: ${h.error}`)
    return errors.length === 0 ? null : errors.join('; ')
  }

  /** Health of every watch in use. */
  watches(): WatchHealth[] {
    return this.#resources.flatMap((r) => r.health() ?? [])
  }

  /** Loop health: loaded once, the current watch errors. */
  health(): LoopHealth {
    return { name: this.name, loaded: this.loaded, gatesReadiness: true, error: this.lastError, lastSuccess: null, waitingFor: 'first list of every watched resource not finished' }
  }

  /** The PVC watch follows pvc.selector and the Secret watch prewarm.requireSecret; the rest is fixed. */
  reconfigure(config: Config): void {
    this.reconfigureWatches(watchSelection(config))
  }

  /**
   * Restarts only the watches whose selection changed. A changed PVC selector lists in the
   * background while the old watch keeps serving, so the state never shows a PVC set half-loaded.
   */
  reconfigureWatches(selection: WatchSelection): void {
    const before = this.#pvcs.enabled && this.#secrets.enabled
    this.#pvcs.select(true, selection.pvcLabelSelector || undefined)
    this.#secrets.select(selection.watchSecrets, this.#secretLabelSelector)
    if (this.#running && before !== (this.#pvcs.enabled && this.#secrets.enabled)) this.#changed()
  }

  /** Loop.run: watches until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    await this.start()
    await untilAborted(signal)
    await this.stop()
  }

  /** Starts every watch and returns at once; `loaded` and the first synced publish tell when it is ready. */
  async start(): Promise<void> {
    if (this.#running) return
    this.#running = true
    this.#log.info({ origin: this.#origin }, 'watching the API server')
    for (const resource of this.#resources) resource.start()
  }

  /** Stops every watch; settles when all are closed. */
  async stop(): Promise<void> {
    this.#running = false
    clearTimeout(this.#timer)
    this.#timer = undefined
    await Promise.all(this.#resources.map((r) => r.stop()))
  }

  #changed(): void {
    if (!this.#running) return
    let promoted = false
    for (const resource of this.#resources) promoted = resource.promote() || promoted
    if (promoted) this.#log.info({}, 'a reconfigured watch has synced and replaced the previous one')
    if (!this.#announced && this.loaded) {
      // Readiness waits on this one: no coalescing delay.
      this.#announced = true
      clearTimeout(this.#timer)
      this.#timer = undefined
      this.#publishNow()
      this.#log.info({ resources: this.#resources.length }, 'cluster state synced from the API server')
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
