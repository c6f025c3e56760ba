// restic key files (doc/design.rst "Keys, Encryption and MAC"): plain JSON holding scrypt
// parameters and `data`, the master keys sealed with scrypt(password) (32 AES key, 16 k, 16 r).
// A repository has one key file per password; the password opens whichever one its MAC verifies.
import { createHash, scrypt } from 'node:crypto'
import type { BlobStore } from '../storage/blob-store.ts'
import { cipherKeysFromBytes, OVERHEAD, openSealed, type CipherKeys } from './crypto.ts'
import { errorMessage } from '../errors.ts'
import { ResticError } from './errors.ts'
import { listIds, readFile } from './files.ts'
import type { ResticKeyCache } from './key-cache.ts'

export interface KeyFile {
  readonly N: number
  readonly r: number
  readonly p: number
  readonly salt: Buffer
  readonly data: Buffer
}

/**
 * Beyond these a key file is refused rather than tried: restic calibrates to at most 60 MiB and
 * ~0.5 s, and a webhook pod should not be made to allocate gigabytes by a file it reads.
 */
export const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024
export const MAX_SCRYPT_WORK = 2 ** 26 // N * r * p; restic's own calibration lands near 2^20

/** OpenSSL's scrypt needs 128·r·(N+2) for V plus 128·r·p for B; a little slack on top. */
function scryptMemory(params: KeyFile): number {
  return 128 * params.r * (params.N + params.p + 2) + 1024 * 1024
}

function positiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/** A key file's JSON, or why it cannot be used. */
export function parseKeyFile(bytes: Buffer): KeyFile | string {
  let json: unknown
  try {
    json = JSON.parse(bytes.toString('utf8'))
  } catch {
    return 'not JSON'
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return 'not a JSON object'
  const { kdf, N, r, p, salt, data } = json as Record<string, unknown>
  if (kdf !== 'scrypt') return `unsupported kdf ${JSON.stringify(kdf)} (only scrypt)`
  if (!positiveInteger(N) || N < 2 || (N & (N - 1)) !== 0) return `invalid scrypt N ${JSON.stringify(N)}`
  if (!positiveInteger(r) || !positiveInteger(p)) return `invalid scrypt r/p ${JSON.stringify(r)}/${JSON.stringify(p)}`
  if (typeof salt !== 'string' || salt === '' || !BASE64.test(salt)) return 'salt is not base64'
  if (typeof data !== 'string' || !BASE64.test(data)) return 'data is not base64'
  const parsed: KeyFile = { N, r, p, salt: Buffer.from(salt, 'base64'), data: Buffer.from(data, 'base64') }
  if (N * r * p > MAX_SCRYPT_WORK || scryptMemory(parsed) > MAX_SCRYPT_MEMORY) return `scrypt parameters N=${N} r=${r} p=${p} exceed this reader's limits`
  if (parsed.data.length < OVERHEAD) return `data too short (${parsed.data.length} bytes)`
  return parsed
}

/** scrypt(password) → the 64 bytes of key material, on the libuv threadpool (never the event loop). */
export function deriveKeys(password: string, params: KeyFile): Promise<CipherKeys> {
  return new Promise((resolve, reject) => {
    scrypt(Buffer.from(password, 'utf8'), params.salt, 64, { N: params.N, r: params.r, p: params.p, maxmem: scryptMemory(params) }, (error, derived) => {
      if (error) reject(error)
      else resolve(cipherKeysFromBytes(derived))
    })
  })
}

function base64Bytes(value: unknown, length: number): Buffer | null {
  if (typeof value !== 'string' || !BASE64.test(value)) return null
  const bytes = Buffer.from(value, 'base64')
  // All-zero keys are what restic calls invalid: a key that was never filled in.
  return bytes.length === length && bytes.some((b) => b !== 0) ? bytes : null
}

/** The decrypted `data` of a key file: {"mac":{"k","r"},"encrypt"}, all base64. */
export function parseMasterKey(plaintext: Buffer): CipherKeys | string {
  let json: unknown
  try {
    json = JSON.parse(plaintext.toString('utf8'))
  } catch {
    return 'master key is not JSON'
  }
  if (typeof json !== 'object' || json === null) return 'master key is not a JSON object'
  const { mac, encrypt } = json as Record<string, unknown>
  const macObject = typeof mac === 'object' && mac !== null ? (mac as Record<string, unknown>) : {}
  const encryptKey = base64Bytes(encrypt, 32)
  const macK = base64Bytes(macObject['k'], 16)
  const macR = base64Bytes(macObject['r'], 16)
  if (!encryptKey || !macK || !macR) return 'master key lacks valid encrypt/mac.k/mac.r'
  return { encrypt: encryptKey, macK, macR }
}

export type KeyFileResult =
  | { readonly outcome: 'opened'; readonly keys: CipherKeys }
  | { readonly outcome: 'wrong-password' }
  | { readonly outcome: 'unusable'; readonly problem: string }

/** Tries one key file with the password: one scrypt run. */
export async function openKeyFile(bytes: Buffer, password: string): Promise<KeyFileResult> {
  const params = parseKeyFile(bytes)
  if (typeof params === 'string') return { outcome: 'unusable', problem: params }
  let derived: CipherKeys
  try {
    derived = await deriveKeys(password, params)
  } catch (error) {
    return { outcome: 'unusable', problem: `scrypt: ${errorMessage(error)}` }
  }
  const opened = openSealed(derived, params.data)
  // A MAC mismatch on a key file is the normal "not this password" answer, not corruption.
  if (!opened.ok) return opened.problem === 'MAC mismatch' ? { outcome: 'wrong-password' } : { outcome: 'unusable', problem: opened.problem }
  const master = parseMasterKey(opened.plaintext)
  return typeof master === 'string' ? { outcome: 'unusable', problem: master } : { outcome: 'opened', keys: master }
}

export interface MasterKey {
  /** The key file (its storage ID) that opened. */
  readonly keyId: string
  readonly keys: CipherKeys
}

/**
 * The master keys the password opens, trying every key file in keys/ (cached answers first, so a
 * cached repository costs one listing and no scrypt).
 */
export async function findMasterKey(store: BlobStore, password: string, options: { signal?: AbortSignal; keyCache?: ResticKeyCache } = {}): Promise<MasterKey> {
  const { signal, keyCache } = options
  const location = store.location
  const ids = await listIds(store, 'keys', signal)
  if (ids.length === 0) throw new ResticError('no-keys', location, 'keys/', `restic repository ${location} has no key files in keys/`)

  const known = new Map(ids.map((id) => [id, keyCache?.get(location, id, password)]))
  for (const [keyId, keys] of known) if (keys) return { keyId, keys }

  let tried = 0
  const problems: string[] = []
  for (const keyId of ids) {
    if (known.get(keyId) === null) {
      tried++
      continue
    }
    signal?.throwIfAborted()
    const bytes = await readFile(store, `keys/${keyId}`, signal)
    if (bytes === null) continue // removed (`restic key remove`) since the listing
    // Cached answers are filed under the name, so the name must really be the content's hash.
    if (createHash('sha256').update(bytes).digest('hex') !== keyId) {
      problems.push(`keys/${keyId}: content does not match its name`)
      continue
    }
    const result = await openKeyFile(bytes, password)
    signal?.throwIfAborted()
    if (result.outcome === 'opened') {
      keyCache?.set(location, keyId, password, result.keys)
      return { keyId, keys: result.keys }
    }
    if (result.outcome === 'wrong-password') {
      tried++
      keyCache?.set(location, keyId, password, null)
    } else {
      problems.push(`keys/${keyId}: ${result.problem}`)
    }
  }
  if (tried === 0 && problems.length === 0) {
    throw new ResticError('no-keys', location, 'keys/', `restic repository ${location} has no key files in keys/ (they disappeared while being read)`)
  }
  if (tried === 0) {
    throw new ResticError('unusable-keys', location, 'keys/', `no usable key file in restic repository ${location}: ${problems.join('; ')}`)
  }
  const also = problems.length > 0 ? ` (unusable: ${problems.join('; ')})` : ''
  throw new ResticError('wrong-password', location, 'keys/', `wrong password for restic repository ${location}: no key in keys/ opens with it${also}`)
}
