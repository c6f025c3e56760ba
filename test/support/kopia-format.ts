// Test-only: writes `kopia.repository` the way kopia does (pretty-printed outer JSON around the
// encrypted parameters), from the read-path document, without importing src/kopia.
import { randomBytes } from 'node:crypto'
import { type ContentEncryption, formatKeyFor, type KeyAlgorithm, sealFormat } from './kopia-crypto.ts'

export interface FormatOptions {
  readonly password: string
  readonly keyAlgorithm?: KeyAlgorithm
  /** Reuse one uniqueID across test repositories to derive the key once (the derivation is the slow part). */
  readonly uniqueId?: Buffer
  readonly version?: 1 | 2 | 3
  readonly encryption?: ContentEncryption
  readonly hash?: 'HMAC-SHA256-128' | 'HMAC-SHA256'
  /** Keep the keys of an existing repository (a password change re-encrypts the same parameters). */
  readonly masterKey?: Buffer
  readonly secret?: Buffer
  /** Extra or overriding fields of the decrypted `format` object (ecc, upgradeLock, requiredFeatures…). */
  readonly extra?: Readonly<Record<string, unknown>>
}

export interface BuiltFormat {
  readonly bytes: Buffer
  readonly uniqueId: Buffer
  readonly masterKey: Buffer
  readonly secret: Buffer
  readonly version: 1 | 2 | 3
  readonly indexVersion: 1 | 2
  readonly encryption: ContentEncryption
  readonly hash: 'HMAC-SHA256-128' | 'HMAC-SHA256'
}

const DAY_NS = 86_400_000_000_000

export function buildFormatBlob(options: FormatOptions): BuiltFormat {
  const uniqueId = options.uniqueId ?? randomBytes(32)
  const masterKey = options.masterKey ?? randomBytes(32)
  const secret = options.secret ?? randomBytes(32)
  const version = options.version ?? 3
  const indexVersion = version === 1 ? 1 : 2
  const encryption = options.encryption ?? 'AES256-GCM-HMAC-SHA256'
  const hash = options.hash ?? 'HMAC-SHA256-128'
  const epochParameters = version === 1
    ? { Enabled: false, EpochRefreshFrequency: 0, FullCheckpointFrequency: 0, CleanupSafetyMargin: 0, MinEpochDuration: 0, EpochAdvanceOnCountThreshold: 0, EpochAdvanceOnTotalSizeBytesThreshold: 0, DeleteParallelism: 0 }
    : { Enabled: true, EpochRefreshFrequency: 1_200_000_000_000, FullCheckpointFrequency: 7, CleanupSafetyMargin: 14_400_000_000_000, MinEpochDuration: DAY_NS, EpochAdvanceOnCountThreshold: 20, EpochAdvanceOnTotalSizeBytesThreshold: 10_485_760, DeleteParallelism: 4 }
  const format = {
    hash,
    encryption,
    secret: secret.toString('base64'),
    masterKey: masterKey.toString('base64'),
    version,
    maxPackSize: 20_971_520,
    indexVersion,
    epochParameters,
    enablePasswordChange: version !== 1,
    splitter: 'DYNAMIC-4M-BUZHASH',
    ...options.extra,
  }
  const keyAlgorithm = options.keyAlgorithm ?? 'scrypt-65536-8-1'
  const formatKey = formatKeyFor(options.password, uniqueId, keyAlgorithm)
  const sealed = sealFormat(Buffer.from(JSON.stringify({ format })), formatKey, uniqueId)
  const outer = {
    tool: 'https://github.com/kopia/kopia',
    buildVersion: 'v0-unofficial',
    buildInfo: 'unknown',
    uniqueID: uniqueId.toString('base64'),
    keyAlgo: keyAlgorithm,
    encryption: 'AES256_GCM',
    encryptedBlockFormat: sealed.toString('base64'),
  }
  return { bytes: Buffer.from(`${JSON.stringify(outer, null, 2)}\n`), uniqueId, masterKey, secret, version, indexVersion, encryption, hash }
}
