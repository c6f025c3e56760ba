// The non-secret part of a repository's decrypted parameters, as `kopia repository status` shows
// it: content hash and encryption, format and index versions, pack size, splitter, the epoch
// manager's settings. The reader itself needs only a few of these; the rest are kept so that a
// person (and a test against real kopia bytes) can see what the repository says about itself.
// Nothing here is key material, so it may be logged or printed.

/** Kopia's epoch.Parameters, field names as kopia writes them; durations in nanoseconds (Go time.Duration). */
export interface EpochParameters {
  readonly enabled: boolean
  readonly epochRefreshFrequencyNs: number
  readonly fullCheckpointFrequency: number
  readonly cleanupSafetyMarginNs: number
  readonly minEpochDurationNs: number
  readonly epochAdvanceOnCountThreshold: number
  readonly epochAdvanceOnTotalSizeBytesThreshold: number
  readonly deleteParallelism: number
}

export interface FormatParameters {
  /** Content hash, e.g. "BLAKE2B-256-128". */
  readonly hash: string
  /** Content encryption, e.g. "AES256-GCM-HMAC-SHA256". */
  readonly encryption: string
  /** Repository format version (1, 2 or 3). */
  readonly version: number
  /** Index format version as written (kopia writes 0 for "v1" in old repositories; 1 here then). */
  readonly indexVersion: number
  /** Bytes; 0 when the field is absent. */
  readonly maxPackSize: number
  /** e.g. "DYNAMIC-4M-BUZHASH"; '' when absent. */
  readonly splitter: string
  /** Absent in format-v1 repositories (no epoch manager). */
  readonly epoch: EpochParameters | undefined
  readonly enablePasswordChange: boolean
}

function numberField(obj: Readonly<Record<string, unknown>>, field: string): number {
  const value = obj[field]
  return typeof value === 'number' && Number.isFinite(value) ? value : 0
}

/**
 * Kopia's `epochParameters` object (Go struct field names, capitalised) -> EpochParameters, or
 * undefined when absent or not an object. Missing or non-numeric fields read as 0 / false:
 * nothing here decides how the repository is read except `enabled`.
 */
export function readEpochParameters(value: unknown): EpochParameters | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const e = value as Readonly<Record<string, unknown>>
  return {
    enabled: e['Enabled'] === true,
    epochRefreshFrequencyNs: numberField(e, 'EpochRefreshFrequency'),
    fullCheckpointFrequency: numberField(e, 'FullCheckpointFrequency'),
    cleanupSafetyMarginNs: numberField(e, 'CleanupSafetyMargin'),
    minEpochDurationNs: numberField(e, 'MinEpochDuration'),
    epochAdvanceOnCountThreshold: numberField(e, 'EpochAdvanceOnCountThreshold'),
    epochAdvanceOnTotalSizeBytesThreshold: numberField(e, 'EpochAdvanceOnTotalSizeBytesThreshold'),
    deleteParallelism: numberField(e, 'DeleteParallelism'),
  }
}

/**
 * The descriptive fields of a decrypted `format` object whose hash, encryption and versions the
 * caller has already validated (they are passed in as validated).
 */
export function readFormatParameters(format: Readonly<Record<string, unknown>>, validated: { hash: string; encryption: string; version: number; indexVersion: number }): FormatParameters {
  return {
    ...validated,
    maxPackSize: numberField(format, 'maxPackSize'),
    splitter: typeof format['splitter'] === 'string' ? format['splitter'] : '',
    epoch: readEpochParameters(format['epochParameters']),
    enablePasswordChange: format['enablePasswordChange'] === true,
  }
}
