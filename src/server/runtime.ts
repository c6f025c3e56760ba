// The running server: the loops that keep the state snapshot warm (a list, started, stopped and
// led by one Supervisor), and the two HTTP servers that read it. `serve` runs it; server tests
// start it in-process on port 0.
import type { Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { hostname } from 'node:os'
import type { FastifyInstance } from 'fastify'
import type { Nudge } from '../admission/decision.ts'
import { startPasswordVerdicts } from '../catalog/password-verdicts.ts'
import { DirectoryClusterSource } from '../cluster/directory-source.ts'
import { durationMs } from '../config/duration.ts'
import { configInForce, restartRequiredChanges } from '../config/restart-required.ts'
import type { Config } from '../config/schema.ts'
import type { PrewarmController } from '../controllers/prewarm.ts'
import type { Logger } from '../log.ts'
import { alwaysLoaded, type Loop, untilAborted } from '../loop.ts'
import { StateStore } from '../state/store.ts'
import type { ReloadingTlsContext, TlsReloadEvent } from '../tls/reloading-context.ts'
import { ensureDevCertificate } from '../tls/write-certificates.ts'
import { buildMetricsServer, buildWebhookServer, CONNECTION_LIMITS } from './app.ts'
import { OpenConnections } from './open-connections.ts'
import { catalogLoop } from './catalog-loop.ts'
import { configLoop } from './config-loop.ts'
import { controllerLoop } from './controller-loop.ts'
import { createMetrics, type Metrics } from './metrics.ts'
import { readiness } from './readiness.ts'
import { statusDocument } from './status.ts'
import { Supervisor, type LeaderElector } from './supervisor.ts'
import { tlsSource } from './tls-source.ts'

export interface RuntimeOptions {
  readonly config: Config
  /** Watched for changes when given. */
  readonly configFile?: string
  /** Applied to every config read from the file on reload, as it was to `config` (e.g. `serve --kubeconfig`). */
  readonly override?: (fromFile: Config) => Config
  readonly log: Logger
}

export interface Runtime {
  readonly store: StateStore
  readonly metrics: Metrics
  readonly supervisor: Supervisor
  readonly webhookUrl: string
  readonly metricsUrl: string
  readonly tls: ReloadingTlsContext
  /**
   * SIGTERM's first step: /readyz answers 503 and every response carries `Connection: close` from now
   * on, while both ports keep serving for server.shutdown.drainPeriod (the endpoints controller takes
   * the pod out meanwhile). Resolves when the period is over, or at once when close() is called.
   */
  drain(): Promise<void>
  /**
   * Stops the servers, then the loops: no new connections, idle ones closed, requests in flight
   * answered; connections still open server.shutdown.timeout after drain() began (after this call
   * without a drain), or the header/request timeout (10 s) after this call if sooner, are destroyed. Then the loops stop (leaders first) and the certificate watch.
   * Idempotent: every call returns the same promise; never rejects.
   */
  close(): Promise<void>
}

/** How often the leader looks for missed restores without a state change. */
const GUARD_INTERVAL_MS = 30_000
/** How often the leader copies the shared credentials into the app Secrets without a state change (a changed shared Secret arrives within this). */
const BACKUP_SECRET_INTERVAL_MS = 30_000

/** How often the leader re-plans backups without a state change (a deleted RS comes back at the latest then; a watch event brings it within 0.5 s). */
const BACKUP_INTERVAL_MS = 60_000

function url(protocol: string, app: FastifyInstance): string {
  const address = app.server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return `${protocol}://${host === '0.0.0.0' || host === '[::]' ? 'localhost' : host}:${address.port}`
}

/**
 * Starts every loop for `config` and both servers; resolves once the webhook listens (after its
 * first certificate: with self-managed TLS the status port is up while it waits). Rejects (after
 * stopping what it started) when a port cannot be bound or no certificate can be had.
 */
export async function startRuntime(options: RuntimeOptions): Promise<Runtime> {
  const { config, log } = options
  if (config.server.devCertificate) {
    const { created, caFile } = await ensureDevCertificate(config.server.tls.certFile, config.server.tls.keyFile)
    if (created) log.info({ certFile: config.server.tls.certFile, caFile }, 'created a self-signed development certificate')
  }
  const store = new StateStore(config)
  const live = config.state.directory === undefined
  // Loaded only to talk to an API server: the Kubernetes client is most of a start's module loading.
  const kube = live ? await import('./kube-parts.ts') : undefined
  const kubeConfig = kube ? kube.loadKubeConfig(config.kube.kubeconfig !== undefined ? { kubeconfig: config.kube.kubeconfig } : {}) : undefined
  const identity = config.kube.identity ?? process.env.HOSTNAME ?? hostname()
  const elector: LeaderElector | undefined = kube && kubeConfig
    ? kube.leaseElector({
        api: kubeConfig, namespace: config.kube.namespace, name: config.kube.leaseName, identity,
        leaseDurationMs: durationMs(config.kube.leaseDuration), renewDeadlineMs: durationMs(config.kube.renewDeadline), retryPeriodMs: durationMs(config.kube.retryPeriod),
        log: log.child({ loop: 'leader-election' }),
      })
    : undefined
  // Secret admissions ask for Kopia password checks; a bounded queue answers them off the request path.
  const passwordChecks = startPasswordVerdicts(store, { log: log.child({ loop: 'password-verdicts' }) })
  const metrics = createMetrics({ readSnapshot: () => store.current, ...(elector ? { isLeader: () => elector.isLeader } : {}), passwordChecks: () => passwordChecks.counts,
    // Read at scrape time, once the TLS source and the supervisor below exist.
    tls: () => tls.served(), configReloadSucceeded: () => supervisor.health().find((h) => h.name === 'config')?.error == null,
  })
  const onReload = (event: TlsReloadEvent) => metrics.tlsReloads.inc({ result: event.ok ? 'success' : 'failure' })
  const tls = tlsSource({ config, ...(kube && kubeConfig ? { kubeConfig, certRotation: kube.CertRotation } : {}), onReload, log })

  // The loops, in start order. Every input of decisions gates readiness; the leader's controllers do not.
  const loops: Loop[] = []
  const catalog = catalogLoop({
    config, log: log.child({ loop: 'catalog' }),
    publish: (state) => store.publish({ catalog: state }),
    observer: {
      polled(source, seconds, ok) {
        metrics.catalogPolls.inc({ source: source.name, result: ok ? 'success' : 'failure' })
        metrics.catalogPollDuration.observe({ source: source.name }, seconds)
      },
    },
  })
  const cluster = kube && kubeConfig
    ? new kube.ApiClusterSource(kubeConfig, (state) => store.publish({ cluster: state }), log.child({ loop: 'cluster' }), kube.watchSelection(config))
    : new DirectoryClusterSource(config.state.directory ?? '', (state) => store.publish({ cluster: state }), log.child({ loop: 'cluster' }))
  loops.push(cluster, catalog, ...tls.loops, {
    name: 'password-verdicts',
    leaderOnly: false,
    async run(signal) {
      await untilAborted(signal)
      passwordChecks.close()
    },
    health: () => alwaysLoaded('password-verdicts'),
  })

  let prewarm: PrewarmController | undefined
  if (kube && kubeConfig) {
    const writes = kube.kubeWrites(kubeConfig)
    const readSnapshot = () => store.current
    const controller = new kube.PrewarmController({
      writes, readSnapshot, log: log.child({ loop: 'prewarm' }),
      onAction: (action, ok) => metrics.prewarmActions.inc({ action: action.type, result: ok ? 'success' : 'failure' }),
    })
    prewarm = controller
    const guard = new kube.MissedRestoreGuard({ writes, readSnapshot, log: log.child({ loop: 'guard' }), instance: identity })
    loops.push(
      controllerLoop({ name: 'prewarm', store, lead: (signal) => controller.lead(signal), pass: () => controller.run(), log }),
      controllerLoop({ name: 'guard', store, intervalMs: GUARD_INTERVAL_MS, pass: (signal) => guard.run(signal), log }),
    )
    // Plans nothing while backup.enabled is off (a reload can turn it on).
    const backups = new kube.BackupGenerator({ writes, readSnapshot, log: log.child({ loop: 'backup' }), instance: identity })
    loops.push(controllerLoop({ name: 'backup', store, intervalMs: BACKUP_INTERVAL_MS, pass: (signal) => backups.run(signal), log }))
    // Writes nothing while backup.secret is absent (a reload can set it). The shared Secret is not
    // watched (that would need list/watch on Secrets): a change to it is copied on the next periodic pass.
    const backupSecrets = new kube.BackupSecretController({ writes: kube.secretWrites(kubeConfig), readSnapshot, log: log.child({ loop: 'backup-secret' }) })
    loops.push(controllerLoop({ name: 'backup-secret', store, intervalMs: BACKUP_SECRET_INTERVAL_MS, lead: () => backupSecrets.lead(), pass: (signal) => backupSecrets.run(signal), log }))
  }

  let restartPending: readonly string[] = []
  if (options.configFile) {
    loops.push(configLoop({
      file: options.configFile, initial: config, log,
      counted: (result) => metrics.configReloads.inc({ result }),
      apply(read) {
        const fromFile = options.override ? options.override(read) : read
        const previous = store.current.config
        const next = configInForce(previous, fromFile)
        store.publish({ config: next })
        supervisor.reconfigure(next)
        if (next.log.level !== previous.log.level) log.level = next.log.level
        restartPending = restartRequiredChanges(next, fromFile)
        for (const key of restartRequiredChanges(previous, fromFile)) log.warn({ key }, `config key ${key} changed: it takes effect after a restart`)
        log.info({ generation: store.current.generation }, 'configuration reloaded')
      },
    }))
  }
  const supervisor = new Supervisor({ loops, ...(elector ? { elector } : {}), log })
  let served: ReloadingTlsContext | undefined
  let webhook: FastifyInstance | undefined
  let stopTls: (() => void) | undefined
  const ready = () => readiness(supervisor.health())
  const statusApp = buildMetricsServer({
    metrics,
    log,
    status: () => {
      const health = supervisor.health()
      return statusDocument(store.current, Date.now(), {
        readiness: readiness(health),
        loops: health,
        configError: health.find((h) => h.name === 'config')?.error ?? null,
        clusterError: health.find((h) => h.name === 'cluster')?.error ?? null,
        tlsReloads: served?.reloads ?? 0,
        tlsFailures: served?.failures ?? 0,
        tls: tls.served(),
        restartPending,
      })
    },
  })
  const statusConnections = new OpenConnections(statusApp.server)
  let webhookConnections: OpenConnections | undefined
  // Shutdown: drain (serve, say not ready), then close the servers by the deadline, then the loops.
  // The loops stop last: an answer given while draining must still rest on live state.
  const drainMs = durationMs(config.server.shutdown.drainPeriod)
  const timeoutMs = durationMs(config.server.shutdown.timeout)
  let shutdownStarted: number | undefined
  let endDrain: (() => void) | undefined
  let drained: Promise<void> | undefined
  const drain = (): Promise<void> => {
    if (drained) return drained
    shutdownStarted = Date.now()
    log.info({ drainPeriodMs: drainMs, timeoutMs }, 'draining: /readyz answers 503, requests still answered with Connection: close')
    drained = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, drainMs)
      endDrain = () => {
        clearTimeout(timer)
        resolve()
      }
    })
    return drained
  }
  let closed: Promise<void> | undefined
  const close = (): Promise<void> => {
    closed ??= (async () => {
      endDrain?.()
      // Node stops enforcing the header and request timeouts once a server closes, so a connection
      // trickling bytes would last until the shutdown timeout: allow it what those timeouts would.
      const deadline = Math.min((shutdownStarted ?? Date.now()) + timeoutMs, Date.now() + Math.max(CONNECTION_LIMITS.headersTimeoutMs, CONNECTION_LIMITS.requestTimeoutMs))
      const app = webhook
      const [forcedWebhook, forcedStatus] = await Promise.all([
        app && webhookConnections ? webhookConnections.closeBy(() => app.close(), deadline) : 0,
        statusConnections.closeBy(() => statusApp.close(), deadline),
      ])
      if (forcedWebhook + forcedStatus > 0) log.warn({ webhook: forcedWebhook, status: forcedStatus, timeoutMs }, 'shutdown deadline: closed connections still open')
      await supervisor.stop()
      stopTls?.()
      tls.close()
    })()
    return closed
  }

  supervisor.start()
  try {
    // The status port first: while the webhook waits for its certificate, /status says why.
    await statusApp.listen({ host: config.server.metricsHost, port: config.server.metricsPort })
    served = await tls.context()
    const server = buildWebhookServer({
      snapshot: () => store.current,
      metrics,
      log,
      tls: served.current(),
      readiness: { pending: () => [...ready().pending] },
      draining: () => shutdownStarted !== undefined,
      onNudge: (nudge: Nudge) => {
        // Every replica checks passwords for its own snapshot.
        if (nudge.type === 'check-kopia-password') {
          passwordChecks.request(nudge)
          return
        }
        // A wait decision: the leader's pre-warm creates or triggers that RD now. A follower logs
        // the request and drops it on purpose: the leader sees the same backup and acts within
        // 0.5 s of a state change, at the latest on its next pass (15 s).
        log.info({ nudge, leader: supervisor.isLeader }, 'pre-warm requested')
        if (supervisor.isLeader) prewarm?.nudge(nudge.namespace, nudge.pvc)
      },
    })
    webhook = server
    webhookConnections = new OpenConnections(server.server)
    // buildWebhookServer passes `https` options, so its server is an https.Server.
    stopTls = served.applyTo(server.server as unknown as Server)
    await server.listen({ host: config.server.host, port: config.server.port })
  } catch (error) {
    // e.g. EADDRINUSE: stop the loops, or their timers keep a failed `serve` alive forever.
    await close()
    throw error
  }

  const runtime: Runtime = {
    store,
    metrics,
    supervisor,
    tls: served,
    webhookUrl: url('https', webhook),
    metricsUrl: url('http', statusApp),
    drain,
    close,
  }
  log.info({ webhook: runtime.webhookUrl, metrics: runtime.metricsUrl, mode: config.mode, loops: loops.map((l) => l.name) }, 'serving')
  return runtime
}
