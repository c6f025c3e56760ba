// Holds the current snapshot. Loops publish partial updates; readers always see a whole snapshot.
import { durationMs } from '../config/duration.ts'
import type { Config } from '../config/schema.ts'
import { EMPTY_CATALOG, type CatalogState } from './catalog-state.ts'
import { EMPTY_CLUSTER, type ClusterState } from './cluster-state.ts'
import { EMPTY_PASSWORD_VERDICTS, type PasswordVerdicts } from './password-verdicts.ts'
import type { Snapshot } from './snapshot.ts'

export type SnapshotListener = (next: Snapshot, previous: Snapshot) => void

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}

/**
 * The one current Snapshot, replaced whole on every `publish` (a new generation, config deep-frozen, other
 * parts frozen at the top) so a request reads one consistent snapshot. Listeners run synchronously in
 * `publish`, in subscription order; an exception from one propagates to the publisher.
 */
export class StateStore {
  #current: Snapshot
  readonly #listeners = new Set<SnapshotListener>()

  constructor(config: Config, cluster: ClusterState = EMPTY_CLUSTER, catalog: CatalogState = EMPTY_CATALOG) {
    this.#current = deepFreeze({ config, staleAfterMs: durationMs(config.catalog.staleAfter), cluster, catalog, passwordVerdicts: EMPTY_PASSWORD_VERDICTS, generation: 1 })
  }

  get current(): Snapshot {
    return this.#current
  }

  /** Swaps in a new snapshot with the given parts replaced. */
  publish(change: { config?: Config; cluster?: ClusterState; catalog?: CatalogState; passwordVerdicts?: PasswordVerdicts }): Snapshot {
    const previous = this.#current
    const config = change.config ?? previous.config
    const next: Snapshot = Object.freeze({
      config: change.config ? deepFreeze(change.config) : previous.config,
      staleAfterMs: change.config ? durationMs(config.catalog.staleAfter) : previous.staleAfterMs,
      cluster: change.cluster ? Object.freeze(change.cluster) : previous.cluster,
      catalog: change.catalog ? Object.freeze(change.catalog) : previous.catalog,
      // Immutable by construction (every change is a new instance).
      passwordVerdicts: change.passwordVerdicts ?? previous.passwordVerdicts,
      generation: previous.generation + 1,
    })
    this.#current = next
    for (const listener of this.#listeners) listener(next, previous)
    return next
  }

  subscribe(listener: SnapshotListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }
}
