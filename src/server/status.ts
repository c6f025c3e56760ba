// The /status document: what the server knows and how old each piece is. The JSON form is this
// object as is; the HTML page (status-page.ts) renders the same object, so both always agree.
import type { Snapshot } from '../state/snapshot.ts'
import { statusView, type StatusExtras } from './status-view.ts'

export type { StatusExtras } from './status-view.ts'

/**
 * The whole /status JSON document at `now` (epoch ms): the status view plus config, loops, TLS, cluster
 * and catalog details. Pure.
 */
export function statusDocument(snapshot: Snapshot, now: number, extras: StatusExtras) {
  const { config, cluster } = snapshot
  const view = statusView(snapshot, now, extras)
  return {
    generation: snapshot.generation,
    generatedAt: view.generatedAt,
    mode: config.mode,
    summary: view.summary,
    config: { lastReloadError: extras.configError, restartPending: extras.restartPending ?? [] },
    loops: extras.loops.map((l) => ({ name: l.name, loaded: l.loaded, gatesReadiness: l.gatesReadiness, error: l.error, lastSuccessAgeSeconds: l.lastSuccess === null ? null : Math.round((now - l.lastSuccess) / 1000) })),
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
      watches: view.watches,
    },
    catalog: {
      staleAfter: config.catalog.staleAfter,
      sources: view.sources,
    },
    pvcs: view.pvcs,
  }
}

export type StatusDocument = ReturnType<typeof statusDocument>
