// Password -> 32-byte format key (kopia's `keyAlgo`), salted with the repository's raw uniqueID.
// scrypt(65536,8,1) needs 64 MiB and ~250 ms, pbkdf2 600k rounds ~150 ms: both run on the libuv
// thread pool (async crypto), never on the event loop, and each result is cached per
// (uniqueID, keyAlgo, sha256(password)) so a repository costs one derivation per password.
import { createHash, hkdfSync, pbkdf2, scrypt } from 'node:crypto'

export const SCRYPT_ALGORITHM = 'scrypt-65536-8-1'
export const PBKDF2_ALGORITHM = 'pbkdf2-sha256-600000'
export const SUPPORTED_KEY_ALGORITHMS: readonly string[] = [SCRYPT_ALGORITHM, PBKDF2_ALGORITHM]

const KEY_SIZE = 32
// Kopia refuses shorter salts for both algorithms.
const MIN_SALT_LENGTH = 16
// 128·N·r = 64 MiB plus scrypt's own bookkeeping; Node's default maxmem (32 MiB) is too small.
const SCRYPT_MAXMEM = 128 * 1024 * 1024
// Bounded: every distinct wrong password (e.g. from admission checks) would otherwise stay forever.
const MAX_CACHED_KEYS = 256

interface CachedKey {
  readonly promise: Promise<Buffer>
  key: Buffer | undefined
}

const cache = new Map<string, CachedKey>()

function cacheKey(salt: Buffer, algorithm: string, password: string): string {
  // Only a digest of the password is kept in memory as a map key, never the password itself.
  const digest = createHash('sha256').update(password, 'utf8').digest('hex')
  return `${salt.toString('hex')}/${algorithm}/${digest}`
}

function deriveUncached(salt: Buffer, algorithm: string, password: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (salt.length < MIN_SALT_LENGTH) {
      reject(new Error(`uniqueID is ${salt.length} bytes; key derivation needs at least ${MIN_SALT_LENGTH}`))
      return
    }
    const done = (error: Error | null, key: Buffer) => (error ? reject(error) : resolve(key))
    // Password bytes are its UTF-8 encoding, no normalization (as in Go's []byte(password)).
    const passwordBytes = Buffer.from(password, 'utf8')
    if (algorithm === SCRYPT_ALGORITHM) scrypt(passwordBytes, salt, KEY_SIZE, { N: 65536, r: 8, p: 1, maxmem: SCRYPT_MAXMEM }, done)
    else if (algorithm === PBKDF2_ALGORITHM) pbkdf2(passwordBytes, salt, 600_000, KEY_SIZE, 'sha256', done)
    else reject(new Error(`unsupported key derivation algorithm ${JSON.stringify(algorithm)} (supported: ${SUPPORTED_KEY_ALGORITHMS.join(', ')})`))
  })
}

function remember(key: string, entry: CachedKey): void {
  cache.delete(key)
  cache.set(key, entry)
  while (cache.size > MAX_CACHED_KEYS) {
    const oldest = cache.keys().next().value
    if (oldest === undefined) break
    cache.delete(oldest)
  }
}

/**
 * The format key for this password, derived off the event loop; concurrent and later calls for the
 * same (salt, algorithm, password) share one derivation. An abort stops the wait, not the
 * derivation, whose result stays cached for the next caller.
 */
export function deriveFormatKey(salt: Buffer, algorithm: string, password: string, signal?: AbortSignal): Promise<Buffer> {
  signal?.throwIfAborted()
  const key = cacheKey(salt, algorithm, password)
  let entry = cache.get(key)
  if (entry === undefined) {
    const promise = deriveUncached(salt, algorithm, password)
    const created: CachedKey = { promise, key: undefined }
    promise.then((derived) => { created.key = derived }, () => { if (cache.get(key) === created) cache.delete(key) })
    entry = created
  }
  remember(key, entry)
  if (signal === undefined) return entry.promise
  return raceAbort(entry.promise, signal)
}

/** The format key if it was derived before; never starts a derivation. */
export function cachedFormatKey(salt: Buffer, algorithm: string, password: string): Buffer | undefined {
  return cache.get(cacheKey(salt, algorithm, password))?.key
}

/** Whether a derivation for this password has been started (finished or not). */
export function isDerivationKnown(salt: Buffer, algorithm: string, password: string): boolean {
  return cache.has(cacheKey(salt, algorithm, password))
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => { signal.removeEventListener('abort', onAbort); resolve(value) },
      (error: unknown) => { signal.removeEventListener('abort', onAbort); reject(error) },
    )
  })
}

/** HKDF-SHA256 as kopia's DeriveKeyFromMasterKey uses it (note: callers choose which of salt/info carries the purpose). */
export function hkdfSha256(ikm: Buffer, salt: Buffer | string, info: Buffer | string, length = KEY_SIZE): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, typeof salt === 'string' ? Buffer.from(salt) : salt, typeof info === 'string' ? Buffer.from(info) : info, length))
}
