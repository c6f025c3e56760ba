// The /status document: what the server knows and how old each piece is. The JSON form is this
// object as is; the HTML page (status-page.ts) renders the same object, so both always agree.
import { redactUrlsDeep } from '../redact-url.ts'
import type { Snapshot } from '../state/snapshot.ts'
import { statusView, type StatusExtras } from './status-view.ts'

export type { StatusExtras } from './status-view.ts'

/**
 * The whole /status JSON document at `now` (epoch ms): the status view plus config, loops, TLS (the served
 * certificate's validity, names and fingerprint; reloads and the last refusal), cluster and catalog
 * details. Every URL in it is redacted (src/redact-url.ts): the page is unauthenticated and error messages
 * may embed an endpoint. Pure.
 */
export function statusDocument(snapshot: Snapshot, now: number, extras: StatusExtras) {
  const { config, cluster } = snapshot
  const view = statusView(snapshot, now, extras)
  const served = extras.tls
  return redactUrlsDeep({
    generation: snapshot.generation,
    generatedAt: view.generatedAt,
    mode: config.mode,
    summary: view.summary,
    config: { lastReloadError: extras.configError, restartPending: extras.restartPending ?? [] },
    loops: extras.loops.map((l) => ({ name: l.name, loaded: l.loaded, gatesReadiness: l.gatesReadiness, error: l.error, lastSuccessAgeSeconds: l.lastSuccess === null ? null : Math.round((now - l.lastSuccess) / 1000) })),
    tls: {
      reloads: extras.tlsReloads,
      failures: extras.tlsFailures,
      lastReloadError: served?.lastReloadError ?? null,
      /** The served certificate; null before the webhook serves one. Times RFC 3339, the expiry also in seconds from now. */
      certificate: served === undefined ? null : {
        notBefore: served.notBefore.toISOString(),
        notAfter: served.notAfter.toISOString(),
        expiresInSeconds: Math.round((served.notAfter.getTime() - now) / 1000),
        dnsNames: [...served.dnsNames],
        fingerprint256: served.fingerprint256,
        problem: served.problem,
      },
    },
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
  })
}

export type StatusDocument = ReturnType<typeof statusDocument>
