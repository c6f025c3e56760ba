// Where the webhook's serving certificate comes from, chosen by one switch: files on disk
// (`certs`, cert-manager; reloaded when they change) or self-managed (a CA and a certificate the
// leader keeps in a Secret, which every replica serves). Either way one ReloadingTlsContext
// serves it, so a new pair never needs a restart.
import type { KubeConfig } from '@kubernetes/client-node'
import type { Config } from '../config/schema.ts'
import { CertRotation } from '../controllers/cert-rotation.ts'
import type { Log } from '../log.ts'
import { type Loop, type LoopHealth, untilAborted } from '../loop.ts'
import { ReloadingTlsContext, type TlsPair, type TlsReloadEvent } from '../tls/reloading-context.ts'

export interface TlsSource {
  /** Loops it needs run (self-managed: reading the Secret on every replica, writing it on the leader). */
  readonly loops: readonly Loop[]
  /** Resolves with the serving context once a first certificate exists; rejects when none can be had. */
  context(): Promise<ReloadingTlsContext>
  close(): void
}

export interface TlsSourceOptions {
  readonly config: Config
  /** Needed for self-managed TLS. */
  readonly kubeConfig?: KubeConfig
  readonly onReload: (event: TlsReloadEvent) => void
  readonly log: Log
}

/** Files, or self-managed when server.tls.selfManaged is set (which needs the API server). */
export function tlsSource(options: TlsSourceOptions): TlsSource {
  const { config, log, onReload } = options
  const selfManaged = config.server.tls.selfManaged
  if (!selfManaged) {
    let context: ReloadingTlsContext | undefined
    return {
      loops: [],
      // Created on demand: a missing or bad pair is a start-up error with the file names in it.
      context: async () => (context ??= new ReloadingTlsContext({ certFile: config.server.tls.certFile, keyFile: config.server.tls.keyFile, log, onReload })),
      close: () => context?.close(),
    }
  }
  if (!options.kubeConfig) throw new Error('server.tls.selfManaged needs the API server: unset state.directory')
  let context: ReloadingTlsContext | undefined
  let latest: TlsPair | undefined
  const rotation = new CertRotation({
    api: options.kubeConfig,
    namespace: config.kube.namespace,
    secretName: selfManaged.secretName,
    service: selfManaged.serviceName,
    mutatingWebhookConfigurations: selfManaged.mutatingWebhookConfigurations,
    validatingWebhookConfigurations: selfManaged.validatingWebhookConfigurations,
    onCertificate: (pair) => {
      latest = pair
      context?.applyPair(pair)
    },
    log: log.child({ loop: 'tls' }),
  })
  const health = (name: string, gatesReadiness: boolean): LoopHealth => ({
    name, loaded: latest !== undefined, gatesReadiness, error: null, lastSuccess: null,
    waitingFor: `the TLS Secret ${config.kube.namespace}/${selfManaged.secretName} (the leader creates it)`,
  })
  const follower: Loop = {
    name: 'tls',
    leaderOnly: false,
    async run(signal) {
      await rotation.start()
      await untilAborted(signal)
      await rotation.stop()
    },
    health: () => health('tls', true),
  }
  const leader: Loop = {
    name: 'tls-rotation',
    leaderOnly: true,
    run: (signal) => rotation.lead(signal),
    health: () => health('tls-rotation', false),
  }
  return {
    loops: [follower, leader],
    async context() {
      const first = await rotation.firstCertificate()
      context ??= new ReloadingTlsContext({ pair: latest ?? first, log, onReload })
      return context
    },
    close: () => context?.close(),
  }
}
