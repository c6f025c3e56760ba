// Where the webhook's serving certificate comes from, chosen by one switch: files on disk
// (`certs`, cert-manager; reloaded when they change) or self-managed (a CA and a certificate the
// leader keeps in a Secret, which every replica serves). Either way one ReloadingTlsContext
// serves it, so a new pair never needs a restart.
import type { KubeConfig } from '@kubernetes/client-node'
import type { Config } from '../config/schema.ts'
import type { CertRotation } from '../controllers/cert-rotation.ts'
import type { Log } from '../log.ts'
import { type Loop, type LoopHealth, untilAborted } from '../loop.ts'
import { serviceDnsNames } from '../tls/certificate-authority.ts'
import { ReloadingTlsContext, type ServedTlsState, type TlsPair, type TlsReloadEvent } from '../tls/reloading-context.ts'

export interface TlsSource {
  /**
   * Loops it needs run: `tls` on every replica (its health is the served certificate's: it gates
   * readiness and is unready while the served certificate has expired), and self-managed, the
   * leader's `tls-rotation` that writes the Secret.
   */
  readonly loops: readonly Loop[]
  /** Resolves with the serving context once a first certificate exists; rejects when none can be had. */
  context(): Promise<ReloadingTlsContext>
  /** The served certificate and the last reload's outcome, once context() has resolved; else undefined. */
  served(): ServedTlsState | undefined
  close(): void
}

export interface TlsSourceOptions {
  readonly config: Config
  /** Needed for self-managed TLS. */
  readonly kubeConfig?: KubeConfig
  /** Needed for self-managed TLS: the rotation class, passed in so files mode never loads the Kubernetes client. */
  readonly certRotation?: typeof CertRotation
  readonly onReload: (event: TlsReloadEvent) => void
  readonly log: Log
}

/**
 * The `tls` loop's health from the served context: loaded once a certificate is served; a refused
 * replacement is an `error` (the good one is still served: degraded); a served certificate that cannot
 * be used now (expired, not yet valid, a name not covered) is `unready`.
 */
function servedHealth(name: string, context: ReloadingTlsContext | undefined, waitingFor: string): LoopHealth {
  const state = context?.state()
  return {
    name, loaded: state !== undefined, gatesReadiness: true,
    error: state?.lastReloadError == null ? null : `refused a new certificate (still serving the previous one): ${state.lastReloadError}`,
    lastSuccess: null, waitingFor,
    ...(state?.problem != null ? { unready: `the served certificate ${state.problem}` } : {}),
  }
}

/**
 * Files, or self-managed when server.tls.selfManaged is set (which needs the API server). Files mode
 * checks a reloaded pair against `server.tls.dnsNames` (default none: validity only); self-managed,
 * against the Service's DNS names.
 */
export function tlsSource(options: TlsSourceOptions): TlsSource {
  const { config, log, onReload } = options
  const selfManaged = config.server.tls.selfManaged
  if (!selfManaged) {
    let context: ReloadingTlsContext | undefined
    const files: Loop = {
      name: 'tls',
      leaderOnly: false,
      // The context watches the files itself; this loop only reports on it.
      run: (signal) => untilAborted(signal),
      health: () => servedHealth('tls', context, `the certificate ${config.server.tls.certFile}`),
    }
    return {
      loops: [files],
      // Created on demand: a missing or bad pair is a start-up error with the file names in it.
      context: async () => (context ??= new ReloadingTlsContext({ certFile: config.server.tls.certFile, keyFile: config.server.tls.keyFile, dnsNames: config.server.tls.dnsNames, log, onReload })),
      served: () => context?.state(),
      close: () => context?.close(),
    }
  }
  if (!options.kubeConfig || !options.certRotation) throw new Error('server.tls.selfManaged needs the API server: unset state.directory')
  let context: ReloadingTlsContext | undefined
  let latest: TlsPair | undefined
  const rotation = new options.certRotation({
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
  const waitingFor = `the TLS Secret ${config.kube.namespace}/${selfManaged.secretName} (the leader creates it)`
  const follower: Loop = {
    name: 'tls',
    leaderOnly: false,
    async run(signal) {
      await rotation.start()
      await untilAborted(signal)
      await rotation.stop()
    },
    // Loaded once the webhook serves a certificate from the Secret (context() resolved).
    health: () => servedHealth('tls', context, waitingFor),
  }
  const leader: Loop = {
    name: 'tls-rotation',
    leaderOnly: true,
    run: (signal) => rotation.lead(signal),
    health: () => ({ name: 'tls-rotation', loaded: latest !== undefined, gatesReadiness: false, error: null, lastSuccess: null, waitingFor }),
  }
  return {
    loops: [follower, leader],
    async context() {
      const first = await rotation.firstCertificate()
      context ??= new ReloadingTlsContext({ pair: latest ?? first, dnsNames: serviceDnsNames(selfManaged.serviceName, config.kube.namespace), log, onReload })
      return context
    },
    served: () => context?.state(),
    close: () => context?.close(),
  }
}
