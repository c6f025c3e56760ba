// `kopia.repository`: plain outer JSON (salt, key algorithm) around an AES-256-GCM box holding the
// repository parameters and the master key. A GCM tag failure is how a wrong password shows.
import { createDecipheriv } from 'node:crypto'
import { isObject, type JsonObject } from '../json.ts'
import { errorMessage } from '../errors.ts'
import { type BlobContext, corrupt, KopiaError, unsupported } from './errors.ts'
import { type FormatParameters, readFormatParameters } from './format-parameters.ts'
import { deriveFormatKey, hkdfSha256, SUPPORTED_KEY_ALGORITHMS } from './key-derivation.ts'
import { parseRfc3339 } from '../rfc3339.ts'

export const FORMAT_BLOB_ID = 'kopia.repository'

/** The outer JSON: nothing secret, enough to derive the key and to recognise the repository. */
export interface FormatBlob {
  readonly uniqueId: Buffer
  readonly keyAlgorithm: string
  readonly encryption: string
  readonly encryptedBlockFormat: Buffer
  readonly buildVersion: string
}

export interface UpgradeLock {
  readonly creationMs: number
  readonly advanceNoticeNs: number
  readonly ioDrainTimeoutNs: number
  readonly maxPermittedClockDriftNs: number
  readonly message: string
}

/** The decrypted parameters a reader needs. Holds key material: never log it. */
export interface RepositoryFormat {
  readonly hash: string
  readonly encryption: string
  readonly masterKey: Buffer
  readonly version: number
  readonly indexVersion: number
  readonly epochEnabled: boolean
  readonly upgradeLock: UpgradeLock | undefined
  /** The same parameters without key material (plus pack size, splitter, epoch settings), for display. */
  readonly parameters: FormatParameters
}

const HASHES = new Set(['BLAKE2B-256-128', 'BLAKE2B-256', 'BLAKE2S-128', 'BLAKE2S-256', 'BLAKE3-256', 'BLAKE3-256-128', 'HMAC-SHA256', 'HMAC-SHA256-128', 'HMAC-SHA224', 'HMAC-SHA3-224', 'HMAC-SHA3-256'])
export const CONTENT_ENCRYPTIONS: readonly string[] = ['AES256-GCM-HMAC-SHA256', 'CHACHA20-POLY1305-HMAC-SHA256']
// Features kopia HEAD understands; anything else must be refused unless marked warn-only.
const KNOWN_FEATURES = new Set(['index-v1', 'index-v2'])

function base64Field(obj: JsonObject, field: string, ctx: BlobContext): Buffer {
  const value = obj[field]
  if (typeof value !== 'string' || value === '' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw corrupt(ctx, `field ${field} is not base64`)
  return Buffer.from(value, 'base64')
}

/**
 * The outer kopia.repository JSON (uniqueID, key algorithm, encryption, encrypted parameters); nothing is
 * decrypted yet. Throws KopiaError `corrupt` for bytes that are not such JSON or a field that is not
 * base64.
 */
export function parseFormatBlob(bytes: Buffer, ctx: BlobContext): FormatBlob {
  let json: unknown
  try {
    json = JSON.parse(bytes.toString('utf8'))
  } catch (error) {
    throw corrupt(ctx, 'is not JSON', error)
  }
  if (!isObject(json)) throw corrupt(ctx, 'is not a JSON object')
  const keyAlgorithm = typeof json['keyAlgo'] === 'string' ? json['keyAlgo'] : ''
  const encryption = typeof json['encryption'] === 'string' ? json['encryption'] : ''
  return {
    uniqueId: base64Field(json, 'uniqueID', ctx),
    keyAlgorithm,
    encryption,
    encryptedBlockFormat: base64Field(json, 'encryptedBlockFormat', ctx),
    buildVersion: typeof json['buildVersion'] === 'string' ? json['buildVersion'] : '',
  }
}

/**
 * Decrypts the inner parameters with the password-derived format key; null when the GCM tag does
 * not verify (kopia: "invalid repository password").
 */
export function decryptFormat(blob: FormatBlob, formatKey: Buffer, ctx: BlobContext): RepositoryFormat | null {
  if (blob.encryption !== 'AES256_GCM') throw unsupported(ctx, `format blob encryption ${JSON.stringify(blob.encryption)} is not supported (only AES256_GCM)`)
  const plaintext = openFormatBox(blob, formatKey)
  if (plaintext === null) return null
  let json: unknown
  try {
    json = JSON.parse(plaintext.toString('utf8'))
  } catch (error) {
    throw corrupt(ctx, 'decrypted repository parameters are not JSON', error)
  }
  const format = isObject(json) ? json['format'] : undefined
  if (!isObject(format)) throw corrupt(ctx, 'decrypted repository parameters have no "format" object')
  return readFormat(format, ctx)
}

/** AES-256-GCM with HKDF("AES") as key and HKDF("CHECKSUM") as associated data, both salted with uniqueID. */
export function openFormatBox(blob: FormatBlob, formatKey: Buffer): Buffer | null {
  const box = blob.encryptedBlockFormat
  if (box.length < 12 + 16) return null
  const key = hkdfSha256(formatKey, blob.uniqueId, 'AES')
  const aad = hkdfSha256(formatKey, blob.uniqueId, 'CHECKSUM')
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, box.subarray(0, 12), { authTagLength: 16 })
    decipher.setAAD(aad)
    decipher.setAuthTag(box.subarray(box.length - 16))
    return Buffer.concat([decipher.update(box.subarray(12, box.length - 16)), decipher.final()])
  } catch {
    return null
  }
}

function readFormat(f: JsonObject, ctx: BlobContext): RepositoryFormat {
  const hash = typeof f['hash'] === 'string' ? f['hash'] : ''
  if (!HASHES.has(hash)) throw unsupported(ctx, `content hash ${JSON.stringify(hash)} is unknown`)
  const encryption = typeof f['encryption'] === 'string' ? f['encryption'] : ''
  if (!CONTENT_ENCRYPTIONS.includes(encryption)) throw unsupported(ctx, `content encryption ${JSON.stringify(encryption)} is not supported (supported: ${CONTENT_ENCRYPTIONS.join(', ')})`)
  if (typeof f['ecc'] === 'string' && f['ecc'] !== '' && typeof f['eccOverheadPercent'] === 'number' && f['eccOverheadPercent'] > 0) {
    throw unsupported(ctx, `error correction ${f['ecc']} is enabled; this reader does not implement ECC`)
  }
  const masterKey = base64Field(f, 'masterKey', ctx)
  const version = typeof f['version'] === 'number' ? f['version'] : 0
  if (version !== 1 && version !== 2 && version !== 3) throw unsupported(ctx, `repository format version ${String(f['version'])} is not supported (1, 2 or 3)`)
  const rawIndexVersion = f['indexVersion'] === undefined ? 0 : f['indexVersion']
  const indexVersion = rawIndexVersion === 0 ? 1 : rawIndexVersion
  if (indexVersion !== 1 && indexVersion !== 2) throw unsupported(ctx, `index version ${String(rawIndexVersion)} is not supported (1 or 2)`)
  const parameters = readFormatParameters(f, { hash, encryption, version, indexVersion })
  const epochEnabled = parameters.epoch?.enabled === true
  checkRequiredFeatures(f['requiredFeatures'], ctx)
  return { hash, encryption, masterKey, version, indexVersion, epochEnabled, upgradeLock: readUpgradeLock(f['upgradeLock'], ctx), parameters }
}

function checkRequiredFeatures(value: unknown, ctx: BlobContext): void {
  if (value === undefined || value === null) return
  if (!Array.isArray(value)) throw corrupt(ctx, 'requiredFeatures is not an array')
  for (const required of value) {
    if (!isObject(required)) throw corrupt(ctx, 'requiredFeatures holds a non-object')
    const feature = typeof required['feature'] === 'string' ? required['feature'] : ''
    const ifNot = required['ifNotUnderstood']
    const warnOnly = isObject(ifNot) && ifNot['warn'] === true
    if (!KNOWN_FEATURES.has(feature) && !warnOnly) throw unsupported(ctx, `the repository requires feature ${JSON.stringify(feature)}, which this reader does not understand`)
  }
}

function nanos(obj: JsonObject, field: string): number {
  const value = obj[field]
  return typeof value === 'number' && Number.isFinite(value) ? value : 0
}

function readUpgradeLock(value: unknown, ctx: BlobContext): UpgradeLock | undefined {
  if (value === undefined || value === null) return undefined
  if (!isObject(value)) throw corrupt(ctx, 'upgradeLock is not an object')
  const created = typeof value['creationTime'] === 'string' ? parseRfc3339(value['creationTime']) : null
  return {
    creationMs: created === null ? 0 : created.seconds * 1000 + Math.floor(created.nanos / 1e6),
    advanceNoticeNs: nanos(value, 'advanceNoticeDuration'),
    ioDrainTimeoutNs: nanos(value, 'ioDrainTimeout'),
    maxPermittedClockDriftNs: nanos(value, 'maxPermittedClockDrift'),
    message: typeof value['message'] === 'string' ? value['message'] : '',
  }
}

/** Kopia's UpgradeLockIntent.IsLocked: locked from (creation + notice - drain), or at once when the notice is too short. */
export function isUpgradeLocked(lock: UpgradeLock | undefined, nowMs: number): boolean {
  if (lock === undefined) return false
  const drainNs = lock.maxPermittedClockDriftNs + 2 * lock.ioDrainTimeoutNs
  if (lock.advanceNoticeNs < drainNs) return true
  return nowMs >= lock.creationMs + (lock.advanceNoticeNs - drainNs) / 1e6
}

/**
 * The KopiaError `upgrading` for a held upgrade lock, with the lock's message when it has one; the caller
 * retries later, as kopia would wait.
 */
export function upgradeLockedError(lock: UpgradeLock, location: string): KopiaError {
  const detail = lock.message === '' ? '' : ` (${lock.message})`
  return new KopiaError('upgrading', location, `a repository upgrade is in progress${detail}; retry after it finishes`, { blobId: FORMAT_BLOB_ID })
}

/** Derives (or reuses) the format key and decrypts; a KopiaError 'wrong-password' when it does not open. */
export async function unlockFormat(blob: FormatBlob, password: string, ctx: BlobContext, signal?: AbortSignal): Promise<RepositoryFormat> {
  if (!SUPPORTED_KEY_ALGORITHMS.includes(blob.keyAlgorithm)) {
    throw unsupported(ctx, `password key derivation ${JSON.stringify(blob.keyAlgorithm)} is not supported (supported: ${SUPPORTED_KEY_ALGORITHMS.join(', ')})`)
  }
  if (blob.encryption !== 'AES256_GCM') throw unsupported(ctx, `format blob encryption ${JSON.stringify(blob.encryption)} is not supported (only AES256_GCM)`)
  let formatKey: Buffer
  try {
    formatKey = await deriveFormatKey(blob.uniqueId, blob.keyAlgorithm, password, signal)
  } catch (error) {
    if (signal?.aborted) throw error
    throw corrupt(ctx, `cannot derive the format key: ${errorMessage(error)}`, error)
  }
  const format = decryptFormat(blob, formatKey, ctx)
  if (format === null) throw new KopiaError('wrong-password', ctx.location, 'the password is wrong: the repository parameters do not decrypt with it', { blobId: ctx.blobId })
  return format
}
