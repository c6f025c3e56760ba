// Keeps TLS servers serving whatever certificate is currently on disk, so cert-manager (or a
// re-run of `writeCertificates`) can rotate it without a restart. setSecureContext only affects
// new handshakes; open keep-alive connections keep the context they were established with.
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto'
import { readFileSync, watch, type FSWatcher } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { SecureContextOptions, Server as TlsServer } from 'node:tls'
import { errorMessage } from '../errors.ts'
import { type Log, silentLog } from '../log.ts'

export type TlsReloadEvent =
  | { ok: true; reloads: number; failures: number; fingerprint256: string; notAfter: Date }
  | { ok: false; reloads: number; failures: number; error: string }

interface ReloadingTlsContextCommonOptions {
  log?: Pick<Log, 'info' | 'warn'>
  /** Fallback re-check for when directory events are missed (network filesystems, replaced directories). 0 disables. Default 30 s. */
  pollIntervalMs?: number
  /** Default 100 ms: one rotation fires several events (temp file, rename, symlink swap). */
  debounceMs?: number
  /** Default true; turning it off leaves only the poll. */
  watch?: boolean
  onReload?: (event: TlsReloadEvent) => void
}

/**
 * Either files to load and watch (cert-manager, `certs`), or a `pair` held in memory and replaced
 * through applyPair() (self-managed TLS, where the certificate comes from a Secret via the API).
 */
export type ReloadingTlsContextOptions = ReloadingTlsContextCommonOptions &
  ({ certFile: string; keyFile: string; pair?: undefined } | { pair: TlsPair; certFile?: undefined; keyFile?: undefined })

/** tls.Server and https.Server (thus fastify's `server`) both satisfy this. */
export type SecureContextTarget = Pick<TlsServer, 'setSecureContext'>

export type CheckResult = 'unchanged' | 'reloaded' | 'rejected'

export interface TlsPair {
  cert: string
  key: string
}

/**
 * The TLS pair servers present, kept current without a restart: either files (`certFile`/`keyFile`,
 * watched and polled every `pollIntervalMs`) or an in-memory pair replaced through `applyPair`. A new pair
 * that does not parse or whose key does not match is rejected (counted, logged once at warn) and the
 * previous one stays. The constructor throws when the initial pair is unreadable or invalid, since there
 * is nothing to fall back to.
 */
export class ReloadingTlsContext {
  reloads = 0
  failures = 0
  /** Assignable after construction so metrics can be wired in later. */
  onReload: ((event: TlsReloadEvent) => void) | undefined

  // Both undefined when the pair is pushed through applyPair() instead of read from files.
  readonly #certFile: string | undefined
  readonly #keyFile: string | undefined
  readonly #log: Pick<Log, 'info' | 'warn'>
  readonly #debounceMs: number
  readonly #targets = new Map<SecureContextTarget, SecureContextOptions>()
  readonly #watchers: FSWatcher[] = []
  #current: TlsPair
  #currentDigest: string
  // Remembers the last rejected state so a persistently bad pair is reported once, not every poll.
  #rejectedKey: string | undefined
  #debounceTimer: NodeJS.Timeout | undefined
  #pollTimer: NodeJS.Timeout | undefined
  #closed = false

  constructor(options: ReloadingTlsContextOptions) {
    this.#certFile = options.certFile === undefined ? undefined : resolve(options.certFile)
    this.#keyFile = options.keyFile === undefined ? undefined : resolve(options.keyFile)
    this.#log = options.log ?? silentLog
    this.#debounceMs = options.debounceMs ?? 100
    this.onReload = options.onReload

    // The initial pair must be good: there is no previous context to fall back to.
    const pair = options.pair ? { cert: options.pair.cert, key: options.pair.key } : readPair(options.certFile, options.keyFile)
    const checked = validatePair(pair)
    if (!checked.ok) throw new Error(`cannot use TLS certificate ${this.#certFile ?? '(in memory)'} with key ${this.#keyFile ?? '(in memory)'}: ${checked.error.message}`, { cause: checked.error })
    this.#current = pair
    this.#currentDigest = digest(pair)
    this.#log.info({ certFile: this.#certFile, ...summarize(checked.x509) }, 'loaded TLS certificate')

    // An in-memory pair has nothing to watch or poll.
    if (options.pair) return
    if (options.watch ?? true) this.#startWatching(options.certFile, options.keyFile)
    const pollIntervalMs = options.pollIntervalMs ?? 30_000
    if (pollIntervalMs > 0) {
      this.#pollTimer = setInterval(() => this.checkNow(), pollIntervalMs)
      this.#pollTimer.unref()
    }
  }

  current(): TlsPair {
    return { ...this.#current }
  }

  /**
   * setSecureContext rebuilds the whole context from its argument, resetting anything not passed
   * (ca, minVersion, ciphers, ...). Pass those as `baseOptions` so every reload keeps them. The
   * current pair is applied at once so such a mistake shows at startup, not at the first rotation.
   * Returns a function that stops updating this server.
   */
  applyTo(server: SecureContextTarget, baseOptions: SecureContextOptions = {}): () => void {
    this.#targets.set(server, baseOptions)
    server.setSecureContext({ ...baseOptions, ...this.#current })
    return () => {
      this.#targets.delete(server)
    }
  }

  /** Re-reads the files now; also what the watcher and the poll call. A no-op for an in-memory pair. */
  checkNow(): CheckResult {
    if (this.#closed || this.#certFile === undefined || this.#keyFile === undefined) return 'unchanged'
    let pair: TlsPair
    try {
      pair = readPair(this.#certFile, this.#keyFile)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unknown'
      return this.#reject(`read:${code}`, new Error(`cannot read certificate or key (${code})`, { cause: error }))
    }
    return this.#offer(pair)
  }

  /**
   * Serves `pair` from now on, validated exactly like a reloaded file pair (a bad pair is rejected
   * and the previous one kept). Only for a context created with `pair`: on a file-backed one the
   * next file check would silently put the files' pair back, so that is refused.
   */
  applyPair(pair: TlsPair): CheckResult {
    if (this.#certFile !== undefined) throw new Error('applyPair() needs a context created with `pair`; this one serves files')
    if (this.#closed) return 'unchanged'
    return this.#offer({ cert: pair.cert, key: pair.key })
  }

  #offer(pair: TlsPair): CheckResult {
    const pairDigest = digest(pair)
    if (pairDigest === this.#currentDigest) {
      this.#rejectedKey = undefined
      return 'unchanged'
    }
    const checked = validatePair(pair)
    if (!checked.ok) return this.#reject(pairDigest, checked.error)

    // Apply to every server before committing, so `current()` never runs ahead of what is served.
    try {
      for (const [server, baseOptions] of this.#targets) server.setSecureContext({ ...baseOptions, ...pair })
    } catch (error) {
      return this.#reject(pairDigest, new Error(`TLS stack refused the pair: ${errorMessage(error)}`, { cause: error }))
    }
    this.#current = pair
    this.#currentDigest = pairDigest
    this.#rejectedKey = undefined
    this.reloads += 1
    const summary = summarize(checked.x509)
    if (summary.notAfter.getTime() < Date.now()) {
      this.#log.warn({ certFile: this.#certFile, notAfter: summary.notAfter }, 'reloaded TLS certificate is already expired')
    }
    this.#log.info({ certFile: this.#certFile, reloads: this.reloads, ...summary }, 'reloaded TLS certificate')
    this.#emit({ ok: true, reloads: this.reloads, failures: this.failures, fingerprint256: summary.fingerprint256, notAfter: summary.notAfter })
    return 'reloaded'
  }

  close(): void {
    this.#closed = true
    for (const watcher of this.#watchers) watcher.close()
    this.#watchers.length = 0
    clearTimeout(this.#debounceTimer)
    clearInterval(this.#pollTimer)
    this.#targets.clear()
  }

  // Kubernetes Secret volumes swap a `..data` symlink, which replaces the files without touching
  // their old inodes; only the containing directory sees that, so the directory is watched.
  #startWatching(certFile: string, keyFile: string): void {
    for (const dir of new Set([dirname(certFile), dirname(keyFile)])) {
      try {
        const watcher = watch(dir, { persistent: false }, () => this.#schedule())
        watcher.on('error', (error) => {
          this.#log.warn({ dir, err: error }, 'TLS directory watch failed; relying on polling')
          watcher.close()
        })
        this.#watchers.push(watcher)
      } catch (error) {
        this.#log.warn({ dir, err: error }, 'cannot watch TLS directory; relying on polling')
      }
    }
  }

  #schedule(): void {
    if (this.#closed) return
    clearTimeout(this.#debounceTimer)
    this.#debounceTimer = setTimeout(() => this.checkNow(), this.#debounceMs)
    this.#debounceTimer.unref()
  }

  #reject(key: string, error: Error): CheckResult {
    if (key === this.#rejectedKey) return 'rejected'
    this.#rejectedKey = key
    this.failures += 1
    this.#log.warn(
      { certFile: this.#certFile, keyFile: this.#keyFile, err: error, failures: this.failures },
      'ignoring new TLS certificate/key; still serving the previous one',
    )
    this.#emit({ ok: false, reloads: this.reloads, failures: this.failures, error: error.message })
    return 'rejected'
  }

  #emit(event: TlsReloadEvent): void {
    try {
      this.onReload?.(event)
    } catch (error) {
      // A broken metrics hook must not stop certificate rotation.
      this.#log.warn({ err: error }, 'TLS onReload hook threw')
    }
  }
}

// Read synchronously: the files are small, and it rules out interleaved checks.
function readPair(certFile: string, keyFile: string): TlsPair {
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') }
}

// The Error's message is the one line for events and the constructor; its cause, what Node threw.
function validatePair(pair: TlsPair): { ok: true; x509: X509Certificate } | { ok: false; error: Error } {
  let x509: X509Certificate
  try {
    x509 = new X509Certificate(pair.cert)
  } catch (error) {
    return { ok: false, error: new Error(`certificate does not parse: ${errorMessage(error)}`, { cause: error }) }
  }
  try {
    if (!x509.checkPrivateKey(createPrivateKey(pair.key))) return { ok: false, error: new Error('certificate and private key do not match') }
  } catch (error) {
    return { ok: false, error: new Error(`private key does not parse: ${errorMessage(error)}`, { cause: error }) }
  }
  return { ok: true, x509 }
}

function digest(pair: TlsPair): string {
  return createHash('sha256').update(pair.cert).update('\0').update(pair.key).digest('hex')
}

// Public facts only: this is what goes to the logs.
function summarize(x509: X509Certificate): { subject: string; serialNumber: string; fingerprint256: string; notAfter: Date } {
  return {
    subject: x509.subject.replaceAll('\n', ', '),
    serialNumber: x509.serialNumber,
    fingerprint256: x509.fingerprint256,
    notAfter: new Date(x509.validTo),
  }
}
