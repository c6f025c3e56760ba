// Self-managed webhook TLS. The CA and the serving certificate live in one Secret; the Lease holder
// creates and renews them (lead()) and writes the CA bundle into the webhook configurations, while
// every replica reads the Secret (start()) and hands the current pair to its server through
// onCertificate, without a restart. One Secret write is atomic, so readers never see a CA from one
// generation with a certificate from another.
import { setTimeout as sleep } from 'node:timers/promises'
import { AdmissionregistrationV1Api, CoreV1Api, KubeConfig, type V1Secret } from '@kubernetes/client-node'
import { type Log, silentLog } from '../log.ts'
import type { TlsPair } from '../tls/reloading-context.ts'
import { apiStatusCode, describeApiError } from './api-status.ts'
import { caBundleBase64, pairMatches, planTls, readTlsSecretData, tlsSecretData, type IssuePolicy, type TlsMaterial } from './tls-material.ts'
import { syncCaBundles } from './webhook-ca-bundle.ts'

const YEAR_MS = 365 * 24 * 60 * 60 * 1000
const WRITE_ATTEMPTS = 5

export interface SelfManagedTlsOptions {
  readonly mode?: 'self-managed'
  readonly api: KubeConfig | { readonly core: CoreV1Api; readonly admission: AdmissionregistrationV1Api }
  /** Where the Secret lives: the server's own namespace, which is also the Service's. */
  readonly namespace: string
  readonly secretName: string
  /** The webhook Service; the certificate names <service>, <service>.<namespace>, ….svc, ….svc.cluster.local. */
  readonly service: string
  readonly dnsNames?: readonly string[]
  readonly ipAddresses?: readonly string[]
  readonly mutatingWebhookConfigurations?: readonly string[]
  readonly validatingWebhookConfigurations?: readonly string[]
  /** Default 10 years. */
  readonly caValidityMs?: number
  /** Default 1 year (never past the CA's expiry). */
  readonly certValidityMs?: number
  /** Default a third of the CA's lifetime. */
  readonly caRenewBeforeMs?: number
  /** Default a third of the serving certificate's lifetime. */
  readonly renewBeforeMs?: number
  /** How often the leader re-checks and the other replicas re-read the Secret. Default 60 s. */
  readonly checkIntervalMs?: number
  /** Pause after a failed leader pass. Default 5 s. */
  readonly retryDelayMs?: number
  /** Receives every new pair; wire it to ReloadingTlsContext#applyPair. */
  readonly onCertificate: (pair: TlsPair) => void
  readonly log?: Pick<Log, 'debug' | 'info' | 'warn' | 'error'>
  /** Clock for issuing and renewal decisions (tests). */
  readonly now?: () => number
}

/**
 * cert-manager issues the certificate into a Secret mounted as files and its cainjector writes the
 * caBundle: the server only reads the files (ReloadingTlsContext) and never touches caBundle, so
 * there is nothing for CertRotation to run in this mode.
 */
export interface CertManagerTlsOptions {
  readonly mode: 'cert-manager'
  readonly certFile: string
  readonly keyFile: string
}

export type WebhookTlsOptions = SelfManagedTlsOptions | CertManagerTlsOptions

export interface ReconcileResult {
  /** Why the Secret was written; empty when it was already fine. */
  readonly reasons: readonly string[]
  readonly patched: readonly string[]
  readonly missing: readonly string[]
}

/**
 * Self-managed webhook TLS in one Secret (`namespace`/`secretName`): every replica reads it (`start`, then
 * every `checkIntervalMs`) and hands a usable pair to `onCertificate`; the Lease holder (`lead`) also
 * creates or renews the CA and serving certificate, writes the Secret (409: read and decide again), and
 * patches the CA bundle into the named webhook configurations. Failures are logged with `{ err }` and
 * retried, never thrown from the loops; private keys are never logged. The constructor throws on an
 * inconsistent validity/renewal policy.
 */
export class CertRotation {
  readonly #core: CoreV1Api
  readonly #admission: AdmissionregistrationV1Api
  readonly #options: SelfManagedTlsOptions
  readonly #policy: IssuePolicy
  readonly #checkIntervalMs: number
  readonly #retryDelayMs: number
  readonly #log: Pick<Log, 'debug' | 'info' | 'warn' | 'error'>
  readonly #now: () => number
  readonly #closed = new AbortController()
  #current: TlsPair | undefined
  #firstPair: PromiseWithResolvers<TlsPair> = Promise.withResolvers()
  #follower: Promise<void> | undefined
  #leaders = new Set<Promise<void>>()

  constructor(options: SelfManagedTlsOptions) {
    const api = options.api
    this.#core = api instanceof KubeConfig ? api.makeApiClient(CoreV1Api) : api.core
    this.#admission = api instanceof KubeConfig ? api.makeApiClient(AdmissionregistrationV1Api) : api.admission
    this.#options = options
    this.#policy = {
      service: options.service,
      namespace: options.namespace,
      dnsNames: options.dnsNames ?? [],
      ipAddresses: options.ipAddresses ?? [],
      caValidityMs: options.caValidityMs ?? 10 * YEAR_MS,
      certValidityMs: options.certValidityMs ?? YEAR_MS,
      caRenewBeforeMs: options.caRenewBeforeMs,
      renewBeforeMs: options.renewBeforeMs,
    }
    checkPolicy(this.#policy)
    this.#checkIntervalMs = options.checkIntervalMs ?? 60_000
    this.#retryDelayMs = options.retryDelayMs ?? 5_000
    this.#log = options.log ?? silentLog
    this.#now = options.now ?? Date.now
    // Nobody may be waiting; a rejection after stop() must not surface as unhandled.
    this.#firstPair.promise.catch(() => {})
  }

  /** The pair last handed to onCertificate. */
  current(): TlsPair | undefined {
    return this.#current ? { ...this.#current } : undefined
  }

  /** Resolves with the first pair (the server cannot listen before it has one); rejects on stop(). */
  firstCertificate(): Promise<TlsPair> {
    return this.#firstPair.promise
  }

  /** Every replica: reads the Secret now, then re-reads it every checkIntervalMs. */
  async start(): Promise<void> {
    if (this.#follower || this.#closed.signal.aborted) return
    await this.#refreshLogged()
    this.#follower = this.#follow()
  }

  /** The Lease holder's loop, e.g. as LeaderLease's onStartedLeading. No write is started once `signal` aborted. */
  lead(signal: AbortSignal): Promise<void> {
    const run = this.#lead(AbortSignal.any([signal, this.#closed.signal]))
    this.#leaders.add(run)
    return run.finally(() => this.#leaders.delete(run))
  }

  /** One leader pass: make the Secret right, then the caBundles, then serve the pair. */
  async reconcile(signal?: AbortSignal): Promise<ReconcileResult> {
    const { material, reasons } = await this.#ensureSecret(signal)
    signal?.throwIfAborted()
    const names = { mutating: this.#options.mutatingWebhookConfigurations ?? [], validating: this.#options.validatingWebhookConfigurations ?? [] }
    let synced
    try {
      synced = await syncCaBundles(this.#admission, names, caBundleBase64(material.caBundle), signal)
    } finally {
      // The other replicas serve what the Secret holds whether or not the patch went through; so does this one.
      this.#deliver({ cert: material.cert, key: material.key })
    }
    if (synced.patched.length > 0) this.#log.info({ patched: synced.patched }, 'wrote the CA bundle into webhook configurations')
    if (synced.missing.length > 0) this.#log.warn({ missing: synced.missing }, 'webhook configurations not found; their caBundle is written once they exist')
    return { reasons, patched: synced.patched, missing: synced.missing }
  }

  /** One read as a non-leader: serves the stored pair if it is usable. Returns whether one was found. */
  async refresh(): Promise<boolean> {
    const secret = await this.#readSecret()
    const stored = readTlsSecretData(secret?.data)
    if (!pairMatches(stored.cert, stored.key)) return false
    this.#deliver({ cert: stored.cert ?? '', key: stored.key ?? '' })
    return true
  }

  async stop(): Promise<void> {
    this.#closed.abort()
    this.#firstPair.reject(new Error('certificate rotation stopped'))
    await Promise.allSettled([this.#follower, ...this.#leaders])
  }

  async #follow(): Promise<void> {
    while (await this.#pause(this.#checkIntervalMs, this.#closed.signal)) {
      // The leader serves what it writes; reading back would only repeat it.
      if (this.#leaders.size === 0) await this.#refreshLogged()
    }
  }

  async #refreshLogged(): Promise<void> {
    try {
      if (!(await this.refresh())) this.#log.info({ secret: this.#secretRef() }, 'no usable TLS Secret yet; waiting for the leader to create it')
    } catch (error) {
      this.#log.warn({ secret: this.#secretRef(), err: error, reason: describeApiError(error) }, 'could not read the TLS Secret')
    }
  }

  async #lead(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let delay = this.#checkIntervalMs
      try {
        await this.reconcile(signal)
      } catch (error) {
        if (signal.aborted) break
        delay = this.#retryDelayMs
        this.#log.error({ secret: this.#secretRef(), err: error, reason: describeApiError(error) }, 'TLS reconcile failed; retrying')
      }
      if (!(await this.#pause(delay, signal))) break
    }
  }

  // Read, decide, write with the read's resourceVersion; a 409 means someone wrote in between
  // (a create racing another replica, an update racing anyone): read again and decide again.
  async #ensureSecret(signal: AbortSignal | undefined): Promise<{ material: TlsMaterial; reasons: readonly string[] }> {
    for (let attempt = 1; ; attempt++) {
      const secret = await this.#readSecret()
      const plan = planTls(readTlsSecretData(secret?.data), this.#policy, this.#now())
      if (plan.reasons.length === 0) return plan
      signal?.throwIfAborted()
      try {
        await this.#writeSecret(secret, plan.material)
        this.#log.info({ secret: this.#secretRef(), reasons: plan.reasons, created: secret === undefined }, 'wrote the TLS Secret')
        return plan
      } catch (error) {
        if (apiStatusCode(error) !== 409 || attempt >= WRITE_ATTEMPTS) throw error
        this.#log.info({ secret: this.#secretRef(), attempt }, 'the TLS Secret changed while writing it; reading it again')
      }
    }
  }

  async #writeSecret(secret: V1Secret | undefined, material: TlsMaterial): Promise<void> {
    const { namespace, secretName: name } = this.#options
    const data = tlsSecretData(material)
    if (secret === undefined) {
      const body: V1Secret = {
        metadata: { name, namespace, labels: { 'app.kubernetes.io/managed-by': 'volsync-autorestore' } },
        type: 'kubernetes.io/tls',
        data,
      }
      await this.#core.createNamespacedSecret({ namespace, body })
      return
    }
    // Keeps the read's resourceVersion (optimistic concurrency), its type (immutable) and any other keys.
    await this.#core.replaceNamespacedSecret({ namespace, name, body: { ...secret, data: { ...secret.data, ...data } } })
  }

  async #readSecret(): Promise<V1Secret | undefined> {
    try {
      return await this.#core.readNamespacedSecret({ namespace: this.#options.namespace, name: this.#options.secretName })
    } catch (error) {
      if (apiStatusCode(error) === 404) return undefined
      throw error
    }
  }

  #deliver(pair: TlsPair): void {
    if (this.#current?.cert === pair.cert && this.#current.key === pair.key) return
    this.#current = pair
    this.#firstPair.resolve({ ...pair })
    try {
      this.#options.onCertificate({ ...pair })
    } catch (error) {
      this.#log.error({ err: error }, 'onCertificate threw')
    }
  }

  /** Resolves false when `signal` aborted instead of the time passing. */
  async #pause(ms: number, signal: AbortSignal): Promise<boolean> {
    try {
      await sleep(ms, undefined, { signal })
      return true
    } catch {
      return false
    }
  }

  #secretRef(): string {
    return `${this.#options.namespace}/${this.#options.secretName}`
  }
}

function checkPolicy(policy: IssuePolicy): void {
  const { caValidityMs, certValidityMs, caRenewBeforeMs, renewBeforeMs } = policy
  if (!(caValidityMs > 0 && certValidityMs > 0)) throw new Error('TLS: validities must be positive')
  if (caRenewBeforeMs !== undefined && !(caRenewBeforeMs > 0 && caRenewBeforeMs < caValidityMs)) throw new Error('TLS: caRenewBeforeMs must be between 0 and caValidityMs')
  if (renewBeforeMs !== undefined && !(renewBeforeMs > 0 && renewBeforeMs < certValidityMs)) throw new Error('TLS: renewBeforeMs must be between 0 and certValidityMs')
  // Otherwise a certificate capped at the CA's expiry would be due at every pass until the CA renews.
  if (renewBeforeMs !== undefined && renewBeforeMs >= (caRenewBeforeMs ?? caValidityMs / 3)) throw new Error('TLS: renewBeforeMs must be shorter than the CA renewal window')
}
