// The JSON /status document: what the server knows and how old each piece is.
import type { Snapshot } from '../state/snapshot.ts'

export interface StatusExtras {
  readonly configError: string | null
  readonly clusterError: string | null
  readonly tlsReloads: number
  readonly tlsFailures: number
}

const ageSeconds = (now: number, at: number | null) => (at === null ? null : Math.round((now - at) / 1000))

export function statusDocument(snapshot: Snapshot, now: number, extras: StatusExtras) {
  const { config, cluster, catalog } = snapshot
  return {
    generation: snapshot.generation,
    mode: config.mode,
    config: { lastReloadError: extras.configError },
    tls: { reloads: extras.tlsReloads, failures: extras.tlsFailures },
    cluster: {
      origin: cluster.origin,
      synced: cluster.synced,
      lastError: extras.clusterError,
      namespaces: [...cluster.namespaces].sort(),
      replicationDestinations: [...cluster.replicationDestinations.values()].map((rd) => ({
        namespace: rd.namespace,
        name: rd.name,
        ready: rd.latestImage?.kind === 'VolumeSnapshot',
        latestImage: rd.latestImage,
      })),
    },
    catalog: {
      staleAfter: config.catalog.staleAfter,
      sources: catalog.sources.map((s) => ({
        name: s.name,
        type: s.type,
        ok: s.error === null && s.lastSuccess !== null,
        stale: s.lastSuccess === null || now - s.lastSuccess > snapshot.staleAfterMs,
        lastSuccessAgeSeconds: ageSeconds(now, s.lastSuccess),
        lastAttemptAgeSeconds: ageSeconds(now, s.lastAttempt),
        error: s.error,
        entries: s.entries,
        diagnostics: s.diagnostics,
      })),
    },
  }
}
