// Keeps TLS servers serving whatever certificate is currently on disk, so cert-manager (or a
// re-run of `writeCertificates`) can rotate it without a restart. setSecureContext only affects
// new handshakes; open keep-alive connections keep the context they were established with.
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto'
import { readFileSync, watch, type FSWatcher } from 'node:fs'
import { isIP } from 'node:net'
import { basename, dirname, resolve } from 'node:path'
import type { SecureContextOptions, Server as TlsServer } from 'node:tls'
import { errorMessage } from '../errors.ts'
import { type Log, silentLog } from '../log.ts'
import { SERVER_TLS_OPTIONS } from './server-options.ts'
import { concernsWatchedFiles } from '../watched-files.ts'

export type TlsReloadEvent =
  | { ok: true; reloads: number; failures: number; fingerprint256: string; notAfter: Date }
  | { ok: false; reloads: number; failures: number; error: string }

/** What is being served and how the last reload went: for /status, the metrics and readiness. */
export interface ServedTlsState {
  readonly reloads: number
  readonly failures: number
  /** Why the last pair offered (a file change, a Secret update) was refused; null once the served pair is the offered one. */
  readonly lastReloadError: string | null
  readonly notBefore: Date
  readonly notAfter: Date
  readonly fingerprint256: string
  readonly dnsNames: readonly string[]
  /** Why the served certificate cannot be used now (expired, not yet valid, a name not covered), or null. */
  readonly problem: string | null
}

/**
 * How far in the future a notBefore may lie and still count as valid: clocks of the issuer
 * (cert-manager, another replica) and of this node differ by seconds, and `certs` backdates by 5 min.
 */
const NOT_BEFORE_TOLERANCE_MS = 5 * 60 * 1000

interface ReloadingTlsContextCommonOptions {
  log?: Pick<Log, 'info' | 'warn'>
  /**
   * Names (DNS names, or IP addresses) every certificate must cover; a new pair that misses one is
   * refused. Default none: only the validity window and the key are checked.
   */
  dnsNames?: readonly string[]
  /** The clock validity is checked against, ms since epoch (tests). Default Date.now. */
  now?: () => number
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
 * that does not parse, whose key does not match, that is expired or not yet valid (5 min tolerance), or
 * that does not cover `dnsNames` is rejected (counted, logged once at warn, kept in `state().lastReloadError`
 * until the served pair is offered again or a good one replaces it) and the previous one stays. The
 * constructor throws when the initial pair is unreadable or its key does not match, since there is nothing
 * to fall back to; an initial pair that is merely expired or misses a name is served and reported as
 * `state().problem` (readiness turns it into a 503 with the reason).
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
  readonly #dnsNames: readonly string[]
  readonly #now: () => number
  readonly #targets = new Map<SecureContextTarget, SecureContextOptions>()
  readonly #watchers: FSWatcher[] = []
  #current: TlsPair
  #currentDigest: string
  #currentX509: X509Certificate
  #lastError: string | null = null
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
    this.#dnsNames = [...(options.dnsNames ?? [])]
    this.#now = options.now ?? Date.now
    this.onReload = options.onReload

    // The initial pair must parse and match: there is no previous context to fall back to.
    const pair = options.pair ? { cert: options.pair.cert, key: options.pair.key } : readPair(options.certFile, options.keyFile)
    const checked = validatePair(pair)
    if (!checked.ok) throw new Error(`cannot use TLS certificate ${this.#certFile ?? '(in memory)'} with key ${this.#keyFile ?? '(in memory)'}: ${checked.error.message}`, { cause: checked.error })
    this.#current = pair
    this.#currentDigest = digest(pair)
    this.#currentX509 = checked.x509
    this.#log.info({ certFile: this.#certFile, ...summarize(checked.x509) }, 'loaded TLS certificate')
    // Served all the same (refusing to start helps nobody: a good pair is hot-loaded when it comes),
    // but readiness reports it.
    const problem = this.#problemOf(checked.x509)
    if (problem !== null) this.#log.warn({ certFile: this.#certFile, ...summarize(checked.x509) }, `the TLS certificate cannot be used: ${problem}`)

    // An in-memory pair has nothing to watch or poll.
    if (options.pair) return
    if (options.watch ?? true) this.#startWatching(options.certFile, options.keyFile)
    const pollIntervalMs = options.pollIntervalMs ?? 30_000
    if (pollIntervalMs > 0) {
      this.#pollTimer = setInterval(() => this.checkNow(), pollIntervalMs)
      this.#pollTimer.unref()
    }
  }

  /** The pair served now (a copy). */
  current(): TlsPair {
    return { ...this.#current }
  }

  /** The served certificate's facts and validity at the context's clock, and the last reload's outcome. */
  state(): ServedTlsState {
    const x509 = this.#currentX509
    return {
      reloads: this.reloads,
      failures: this.failures,
      lastReloadError: this.#lastError,
      notBefore: new Date(x509.validFromDate),
      notAfter: new Date(x509.validToDate),
      fingerprint256: x509.fingerprint256,
      dnsNames: dnsNamesOf(x509),
      problem: this.#problemOf(x509),
    }
  }

  /**
   * setSecureContext rebuilds the whole context from its argument, resetting anything not passed
   * (ca, minVersion, ciphers, ...). Pass those as `baseOptions` so every reload keeps them (default
   * SERVER_TLS_OPTIONS: the webhook's versions and ciphers). The current pair is applied at once so such
   * a mistake shows at startup, not at the first rotation. Returns a function that stops updating this server.
   */
  applyTo(server: SecureContextTarget, baseOptions: SecureContextOptions = SERVER_TLS_OPTIONS): () => void {
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
      // What is offered is what is served (e.g. a refused pair replaced by the good one again).
      this.#rejectedKey = undefined
      this.#lastError = null
      return 'unchanged'
    }
    const checked = validatePair(pair)
    if (!checked.ok) return this.#reject(pairDigest, checked.error)
    // A pair that parses but cannot be used now is refused like a broken one: serving it would fail
    // every API server call (failurePolicy Ignore: PVCs start empty) while the good one still works.
    const problem = this.#problemOf(checked.x509)
    if (problem !== null) return this.#reject(pairDigest, new Error(`certificate ${problem}`))

    // Apply to every server before committing, so `current()` never runs ahead of what is served.
    try {
      for (const [server, baseOptions] of this.#targets) server.setSecureContext({ ...baseOptions, ...pair })
    } catch (error) {
      return this.#reject(pairDigest, new Error(`TLS stack refused the pair: ${errorMessage(error)}`, { cause: error }))
    }
    this.#current = pair
    this.#currentDigest = pairDigest
    this.#currentX509 = checked.x509
    this.#rejectedKey = undefined
    this.#lastError = null
    this.reloads += 1
    const summary = summarize(checked.x509)
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
      const names = new Set([certFile, keyFile].filter((file) => dirname(file) === dir).map((file) => basename(file)))
      try {
        const watcher = watch(dir, { persistent: false }, (_event, changed) => {
          if (concernsWatchedFiles(changed, names)) this.#schedule()
        })
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

  /** Why `x509` cannot be served correctly at this moment, in words, or null. */
  #problemOf(x509: X509Certificate): string | null {
    const now = this.#now()
    const notAfter = x509.validToDate.getTime()
    const notBefore = x509.validFromDate.getTime()
    if (notAfter <= now) return `expired at ${new Date(notAfter).toISOString()}`
    if (notBefore > now + NOT_BEFORE_TOLERANCE_MS) return `is not valid before ${new Date(notBefore).toISOString()}`
    const missing = this.#dnsNames.filter((name) => (isIP(name) ? x509.checkIP(name) : x509.checkHost(name, { wildcards: true })) === undefined)
    if (missing.length > 0) return `does not cover ${missing.join(', ')}`
    return null
  }

  #reject(key: string, error: Error): CheckResult {
    this.#lastError = error.message
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

function dnsNamesOf(x509: X509Certificate): string[] {
  return (x509.subjectAltName ?? '').split(', ').filter((n) => n.startsWith('DNS:')).map((n) => n.slice(4))
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
