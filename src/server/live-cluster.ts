// The live-cluster half of the runtime (state.directory absent): cluster state watched from the
// API server, a Lease so that exactly one replica writes, and the controllers that leader runs
// (pre-warm, missed-restore guard). Every replica serves admission from its own watch.
import { hostname } from 'node:os'
import type { Nudge } from '../admission/decision.ts'
import { ApiClusterSource, labelSelectorString } from '../cluster/api-source.ts'
import { loadKubeConfig } from '../cluster/kube-config.ts'
import { durationMs } from '../config/duration.ts'
import type { Config } from '../config/schema.ts'
import { CertRotation } from '../controllers/cert-rotation.ts'
import { kubeWrites } from '../controllers/kube-writes.ts'
import { LeaderLease } from '../controllers/leader-lease.ts'
import { MissedRestoreGuard } from '../controllers/missed-restore-guard.ts'
import { PrewarmController } from '../controllers/prewarm.ts'
import type { Logger } from '../log.ts'
import type { StateStore } from '../state/store.ts'
import type { TlsPair } from '../tls/reloading-context.ts'
import type { Metrics } from './metrics.ts'

/** How often the leader looks for missed restores without a state change. */
const GUARD_INTERVAL_MS = 30_000
/** State changes (a watch event, a catalog poll) wake the leader's controllers at most this often. */
const REACT_AFTER_MS = 500

export interface LiveCluster {
  readonly source: ApiClusterSource
  readonly kubeConfig: ReturnType<typeof loadKubeConfig>
  /** With server.tls.selfManaged: the first serving certificate (the leader creates it when absent). */
  firstCertificate(): Promise<TlsPair> | undefined
  isLeader(): boolean
  nudge(nudge: Nudge): void
  stop(): Promise<void>
}

export interface LiveClusterOptions {
  /** Self-managed TLS: every new serving certificate (wire it to the TLS context). */
  readonly onCertificate?: (pair: TlsPair) => void
}

export function startLiveCluster(config: Config, store: StateStore, metrics: Pick<Metrics, 'prewarmActions'>, log: Logger, options: LiveClusterOptions = {}): LiveCluster {
  const kubeConfig = loadKubeConfig(config.kube.kubeconfig !== undefined ? { kubeconfig: config.kube.kubeconfig } : {})
  const source = new ApiClusterSource(kubeConfig, (state) => store.publish({ cluster: state }), log.child({ loop: 'cluster' }), {
    pvcLabelSelector: labelSelectorString(config.pvc.selector),
    // Secrets (key names only) matter only to prewarm.requireSecret; without it, no Secret watch and no RBAC for it.
    watchSecrets: config.prewarm.requireSecret !== undefined,
  })
  source.start()

  const writes = kubeWrites(kubeConfig)
  const readSnapshot = () => store.current
  const identity = config.kube.identity ?? process.env.HOSTNAME ?? hostname()
  const prewarm = new PrewarmController({
    writes, readSnapshot, log: log.child({ loop: 'prewarm' }),
    onAction: (action, ok) => metrics.prewarmActions.inc({ action: action.type, result: ok ? 'success' : 'failure' }),
  })
  const guard = new MissedRestoreGuard({ writes, readSnapshot, log: log.child({ loop: 'guard' }), instance: identity })
  const selfManaged = config.server.tls.selfManaged
  const rotation = selfManaged
    ? new CertRotation({
        api: kubeConfig,
        namespace: config.kube.namespace,
        secretName: selfManaged.secretName,
        service: selfManaged.serviceName,
        mutatingWebhookConfigurations: selfManaged.mutatingWebhookConfigurations,
        validatingWebhookConfigurations: selfManaged.validatingWebhookConfigurations,
        onCertificate: (pair) => options.onCertificate?.(pair),
        log: log.child({ loop: 'tls' }),
      })
    : undefined
  void rotation?.start()
  let guardTimer: NodeJS.Timeout | undefined
  let leading: AbortSignal | undefined
  let reactTimer: NodeJS.Timeout | undefined
  // A new backup, namespace, RD or PVC should not wait for the next tick: react to the state itself.
  const unsubscribe = store.subscribe(() => {
    if (!leading || leading.aborted || reactTimer) return
    const signal = leading
    reactTimer = setTimeout(() => {
      reactTimer = undefined
      if (signal.aborted) return
      void prewarm.run()
      void guard.run(signal)
    }, REACT_AFTER_MS).unref()
  })

  const lease = new LeaderLease({
    api: kubeConfig,
    namespace: config.kube.namespace,
    name: config.kube.leaseName,
    identity,
    leaseDurationMs: durationMs(config.kube.leaseDuration),
    renewDeadlineMs: durationMs(config.kube.renewDeadline),
    retryPeriodMs: durationMs(config.kube.retryPeriod),
    log: log.child({ loop: 'lease' }),
    onStartedLeading(signal) {
      log.info({ identity }, 'leading: running the pre-warm controller and the missed-restore guard')
      leading = signal
      prewarm.lead(signal)
      void rotation?.lead(signal)
      const tick = () => {
        if (signal.aborted) return
        void guard.run(signal).finally(() => {
          if (!signal.aborted) guardTimer = setTimeout(tick, GUARD_INTERVAL_MS).unref()
        })
      }
      signal.addEventListener('abort', () => clearTimeout(guardTimer), { once: true })
      tick()
    },
    onStoppedLeading() {
      log.warn({ identity }, 'not leading any more: controllers stopped')
    },
  })
  lease.start()

  return {
    source,
    kubeConfig,
    isLeader: () => lease.isLeader,
    firstCertificate: () => rotation?.firstCertificate(),
    nudge(nudge) {
      if (nudge.type === 'prewarm') prewarm.nudge(nudge.namespace, nudge.pvc)
    },
    async stop() {
      unsubscribe()
      clearTimeout(reactTimer)
      clearTimeout(guardTimer)
      await lease.stop()
      await rotation?.stop()
      await source.stop()
    },
  }
}
