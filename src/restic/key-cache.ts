// Remembers what scrypt found per (repository, key file, password), because a catalog source
// re-opens its repository on every poll and restic calibrates scrypt to ~0.5 s and tens of MiB.
// Key files are named by the SHA-256 of their content, so a name always means the same key and
// both answers can be kept: the master key it opens to, or "this password does not open it"
// (which keeps a wrong password from costing a full scrypt per key file on every poll). It also
// bounds how many derivations run at once (`derive`), since it is the one object every source shares.
import { createHmac, randomBytes } from 'node:crypto'
import type { CipherKeys } from './crypto.ts'

export interface ResticKeyCacheOptions {
  /** Entries kept; the least recently used goes first. Default 10 000. */
  readonly maxEntries?: number
  /** Key derivations run at once through `derive` (default 2; see there). */
  readonly maxDerivations?: number
}

/**
 * What scrypt found, per repository location, key file and password (HMAC'd with a per-process secret,
 * never stored as is): the master keys, or null for "this password does not open it". In memory, least
 * recently used dropped beyond `maxEntries`. Holds key material: never log it. The constructor throws
 * RangeError for a `maxEntries` that is not a positive integer.
 */
export class ResticKeyCache {
  readonly #entries = new Map<string, CipherKeys | null>()
  readonly #maxEntries: number
  // Passwords are keyed through an HMAC with a per-cache secret: no stable password fingerprint in memory.
  readonly #secret = randomBytes(32)
  readonly #maxDerivations: number
  #derivations = 0
  readonly #waiting: Array<() => void> = []

  constructor(options: ResticKeyCacheOptions = {}) {
    const max = options.maxEntries ?? 10_000
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`maxEntries must be a positive integer, got ${max}`)
    this.#maxEntries = max
    const derivations = options.maxDerivations ?? 2
    if (!Number.isSafeInteger(derivations) || derivations < 1) throw new RangeError(`maxDerivations must be a positive integer, got ${derivations}`)
    this.#maxDerivations = derivations
  }

  /**
   * Runs `task` (an open that may derive a key: restic's scrypt, Kopia's format key) once fewer than
   * `maxDerivations` such tasks are running, first come first served; resolves or rejects as it does.
   * Why: scrypt runs on the libuv threadpool (4 threads by default), which also serves every file read,
   * DNS lookup and other crypto of the process; hundreds of repositories opened at once would queue all
   * of that behind ~0.3 s derivations. Aborting `signal` while waiting rejects with its reason, unrun.
   */
  async derive<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.#derivations >= this.#maxDerivations) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          const at = this.#waiting.indexOf(start)
          if (at >= 0) this.#waiting.splice(at, 1)
          reject(signal!.reason)
        }
        const start = () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        }
        if (signal?.aborted) return reject(signal.reason)
        signal?.addEventListener('abort', onAbort, { once: true })
        this.#waiting.push(start)
      })
    } else {
      this.#derivations++
    }
    try {
      return await task()
    } finally {
      // The permit passes straight to the next waiter, so the count never dips below the limit while some wait.
      const next = this.#waiting.shift()
      if (next) next()
      else this.#derivations--
    }
  }

  /** Tasks running in `derive` now (at most `maxDerivations`). */
  get derivationsRunning(): number {
    return this.#derivations
  }

  #key(location: string, keyFile: string, password: string): string {
    const digest = createHmac('sha256', this.#secret).update(password, 'utf8').digest('base64')
    return `${location}\u0000${keyFile}\u0000${digest}`
  }

  /** The master keys, null when this password is known not to open the key file, undefined when unknown. */
  get(location: string, keyFile: string, password: string): CipherKeys | null | undefined {
    const key = this.#key(location, keyFile, password)
    const found = this.#entries.get(key)
    if (found === undefined) return undefined
    // Refresh: Map iteration order is insertion order, so the first entry is the least recently used.
    this.#entries.delete(key)
    this.#entries.set(key, found)
    return found
  }

  set(location: string, keyFile: string, password: string, keys: CipherKeys | null): void {
    const key = this.#key(location, keyFile, password)
    this.#entries.delete(key)
    this.#entries.set(key, keys)
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next()
      if (oldest.done === true) break
      this.#entries.delete(oldest.value)
    }
  }

  get size(): number {
    return this.#entries.size
  }

  clear(): void {
    this.#entries.clear()
  }
}
