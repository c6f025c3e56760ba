// Builds state snapshots for rule tests from YAML config and Kubernetes objects, through the
// same code the server uses (config schema, cluster reducer, catalog state).
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { clusterStateFromObjects } from '../../src/cluster/cluster-objects.ts'
import { parseConfig } from '../../src/config/load.ts'
import { buildCatalogState, type CatalogEntry, type SourceState } from '../../src/state/catalog-state.ts'
import type { Snapshot } from '../../src/state/snapshot.ts'
import { StateStore } from '../../src/state/store.ts'

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures')

export function fixtureText(path: string): string {
  return readFileSync(join(FIXTURES, path), 'utf8')
}

/** Every document of a YAML fixture as plain objects. */
export function fixtureObjects(path: string): Record<string, unknown>[] {
  return parseAllDocuments(fixtureText(path)).flatMap((doc) => (Array.isArray(doc) ? doc : [doc])).map((doc) => doc.toJS() as Record<string, unknown>).filter(Boolean)
}

export function fixtureJson<T = Record<string, unknown>>(path: string): T {
  return JSON.parse(fixtureText(path)) as T
}

export const NOW = Date.parse('2026-03-16T09:00:00Z')

export interface SourceSpec {
  readonly name?: string
  readonly entries?: readonly Partial<CatalogEntry>[]
  /** ms before NOW of the last success; null: never polled successfully. */
  readonly ageMs?: number | null
  readonly error?: string | null
}

export function source(spec: SourceSpec): SourceState {
  const name = spec.name ?? 'test'
  const lastSuccess = spec.ageMs === null ? null : NOW - (spec.ageMs ?? 1000)
  return {
    name,
    type: 'static',
    lastSuccess,
    lastAttempt: NOW - 1000,
    error: spec.error ?? null,
    entries: (spec.entries ?? []).map((e) => ({ namespace: 'media', pvc: 'jellyfin', source: name, kind: 'static', snapshots: 1, ...e })),
    diagnostics: [],
    repositories: [],
  }
}

export function snapshotOf(options: { config?: string; objects?: readonly unknown[]; sources?: readonly SourceState[] } = {}): Snapshot {
  const store = new StateStore(parseConfig(options.config ?? '{}'))
  store.publish({ cluster: clusterStateFromObjects(options.objects ?? [], 'test').state })
  return store.publish({ catalog: buildCatalogState(options.sources ?? [source({})]) })
}
