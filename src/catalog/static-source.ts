// Backups declared in config: for tests, the embedded default, or to force a restore by hand.
import type { StaticSourceConfig } from '../config/schema.ts'
import type { CatalogEntry } from '../state/catalog-state.ts'
import type { CatalogSource } from './source.ts'

/** A source whose every poll returns the config's `backups` as frozen entries of kind `static`; reads nothing. */
export function staticSource(config: StaticSourceConfig): CatalogSource {
  const entries: readonly CatalogEntry[] = Object.freeze(config.backups.map((b) => Object.freeze({
    namespace: b.namespace,
    pvc: b.pvc,
    source: config.name,
    kind: 'static' as const,
    snapshots: b.snapshots,
    ...(b.newest ? { newest: b.newest } : {}),
    ...(b.sizeBytes !== undefined ? { sizeBytes: b.sizeBytes } : {}),
  })))
  const result = Object.freeze({ entries })
  return { name: config.name, type: 'static', poll: async () => result }
}
