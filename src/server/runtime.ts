// Wires the loops (config watch, cluster state from a directory or the API server, catalog
// poller, and with an API server the Lease and the leader's controllers) to the state store and
// the two servers. `serve` runs it; server tests start it in-process on port 0.
import type { Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { isDeepStrictEqual } from 'node:util'
import type { FastifyInstance } from 'fastify'
import { CatalogPoller } from '../catalog/poller.ts'
import { createSource, createSourceContext } from '../catalog/sources.ts'
import { DirectoryClusterSource } from '../cluster/directory-source.ts'
import { durationMs } from '../config/duration.ts'
import type { Config } from '../config/schema.ts'
import { ConfigWatcher } from '../config/watch.ts'
import type { Logger } from '../log.ts'
import { StateStore } from '../state/store.ts'
import { ReloadingTlsContext, type TlsPair, type TlsReloadEvent } from '../tls/reloading-context.ts'
import { ensureDevCertificate } from '../tls/write-certificates.ts'
import { buildMetricsServer, buildWebhookServer } from './app.ts'
import { createMetrics, type Metrics } from './metrics.ts'
import { type LiveCluster, startLiveCluster } from './live-cluster.ts'
import { statusDocument } from './status.ts'

export interface RuntimeOptions {
  readonly config: Config
  /** Watched for changes when given. */
  readonly configFile?: string
  readonly log: Logger
}

export interface Runtime {
  readonly store: StateStore
  readonly metrics: Metrics
  readonly webhookUrl: string
  readonly metricsUrl: string
  readonly tls: ReloadingTlsContext
  close(): Promise<void>
}

function url(protocol: string, app: FastifyInstance): string {
  const address = app.server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return `${protocol}://${host === '0.0.0.0' || host === '[::]' ? 'localhost' : host}:${address.port}`
}

export async function startRuntime(options: RuntimeOptions): Promise<Runtime> {
  const { config, log } = options
  const directory = config.state.directory
  if (config.server.devCertificate) {
    const { created, caFile } = await ensureDevCertificate(config.server.tls.certFile, config.server.tls.keyFile)
    if (created) log.info({ certFile: config.server.tls.certFile, caFile }, 'created a self-signed development certificate')
  }

  const store = new StateStore(config)
  // Declared before the metrics that read it; assigned once the cluster source exists.
  let live: LiveCluster | undefined
  const metrics = createMetrics(() => store.current, () => live?.isLeader() ?? false)
  const onReload = (event: TlsReloadEvent) => metrics.tlsReloads.inc({ result: event.ok ? 'success' : 'failure' })
  // Offline: YAML files. Otherwise the API server, with a Lease and the leader's controllers.
  let cluster: { readonly loaded: boolean; readonly lastError: string | null; stop(): void | Promise<void> }
  let tls: ReloadingTlsContext
  if (directory) {
    const offline = new DirectoryClusterSource(directory, (state) => store.publish({ cluster: state }), log)
    await offline.start()
    cluster = offline
    tls = new ReloadingTlsContext({ certFile: config.server.tls.certFile, keyFile: config.server.tls.keyFile, logger: log, onReload })
  } else {
    // Self-managed TLS: each new certificate from the Secret goes to the context, once it exists.
    let latest: TlsPair | undefined
    let selfManagedContext: ReloadingTlsContext | undefined
    const started = startLiveCluster(config, store, metrics, log, {
      onCertificate: (pair) => {
        latest = pair
        selfManagedContext?.applyPair(pair)
      },
    })
    live = started
    cluster = { get loaded() { return started.source.loaded }, get lastError() { return started.source.lastError }, stop: () => started.stop() }
    try {
      const first = started.firstCertificate()
      if (first) {
        // The server cannot listen before it has a certificate: wait for the Secret (the leader creates it).
        const pair = await first
        selfManagedContext = new ReloadingTlsContext({ pair: latest ?? pair, logger: log, onReload })
        tls = selfManagedContext
      } else {
        tls = new ReloadingTlsContext({ certFile: config.server.tls.certFile, keyFile: config.server.tls.keyFile, logger: log, onReload })
      }
    } catch (error) {
      await started.stop()
      throw error
    }
  }

  const sourceContext = createSourceContext()
  const startPoller = (cfg: Config): CatalogPoller => {
    const poller = new CatalogPoller(cfg.catalog.sources.map((source) => createSource(source, sourceContext)), (catalog) => store.publish({ catalog }), {
      intervalMs: durationMs(cfg.catalog.interval),
      log,
      observer: {
        polled(source, seconds, ok) {
          metrics.catalogPolls.inc({ source: source.name, result: ok ? 'success' : 'failure' })
          metrics.catalogPollDuration.observe({ source: source.name }, seconds)
        },
      },
    })
    void poller.start()
    return poller
  }
  let poller = startPoller(config)

  const watcher = options.configFile
    ? new ConfigWatcher(options.configFile, config, {
        changed(next) {
          const previous = store.current.config
          metrics.configReloads.inc({ result: 'success' })
          store.publish({ config: next })
          if (!isDeepStrictEqual(previous.catalog, next.catalog)) {
            poller.stop()
            poller = startPoller(next)
          }
          for (const key of ['server', 'state', 'kube', 'log'] as const) {
            if (!isDeepStrictEqual(previous[key], next[key])) log.warn({ key }, `config key ${key} changed: it takes effect after a restart`)
          }
          log.info({ generation: store.current.generation }, 'configuration reloaded')
        },
        rejected(message) {
          metrics.configReloads.inc({ result: 'failure' })
          log.error({ err: message }, 'new configuration rejected; the last good one stays in force')
        },
      })
    : undefined
  await watcher?.start()

  const webhook = buildWebhookServer({
    snapshot: () => store.current,
    metrics,
    log,
    tls: tls.current(),
    readiness: {
      pending: () => [
        ...(cluster.loaded ? [] : [`cluster state not loaded (${cluster.lastError ?? 'loading'})`]),
        ...(poller.firstPollDone ? [] : ['first catalog poll not finished']),
      ],
    },
    // A `wait` decision: the leader's pre-warm controller creates or triggers that RD now.
    onNudge: (nudge) => {
      log.info({ nudge }, 'pre-warm requested')
      live?.nudge(nudge)
    },
  })
  // buildWebhookServer passes `https` options, so its server is an https.Server.
  const stopTls = tls.applyTo(webhook.server as unknown as Server)
  const statusApp = buildMetricsServer({
    metrics,
    log,
    status: () => statusDocument(store.current, Date.now(), { configError: watcher?.lastError ?? null, clusterError: cluster.lastError, tlsReloads: tls.reloads, tlsFailures: tls.failures }),
  })
  const stopLoops = async () => {
    watcher?.stop()
    poller.stop()
    await cluster.stop()
    stopTls()
    tls.close()
    await Promise.allSettled([webhook.close(), statusApp.close()])
  }
  try {
    await webhook.listen({ host: config.server.host, port: config.server.port })
    await statusApp.listen({ host: config.server.metricsHost, port: config.server.metricsPort })
  } catch (error) {
    // e.g. EADDRINUSE: stop the loops, or their timers keep a failed `serve` alive forever.
    await stopLoops()
    throw error
  }

  const runtime: Runtime = {
    store,
    metrics,
    tls,
    webhookUrl: url('https', webhook),
    metricsUrl: url('http', statusApp),
    close: stopLoops,
  }
  log.info({ webhook: runtime.webhookUrl, metrics: runtime.metricsUrl, mode: config.mode }, 'serving')
  return runtime
}
