// The one error type of the Kopia reader. Messages name the repository location and, when one
// is involved, the blob; they never contain a password or key material, so callers may log them.

export type KopiaErrorCode =
  | 'wrong-password' // the format blob does not decrypt with this password
  | 'unsupported' // a feature this reader deliberately does not implement (ECC, s2, ...)
  | 'corrupt' // bytes that do not parse or do not authenticate
  | 'missing' // a blob the repository needs is not there
  | 'upgrading' // an upgrade lock is held: kopia itself would wait, so retry later
  | 'not-a-repository' // no kopia.repository at this location
  | 'changed' // the location now holds a different repository

/**
 * Every failure of the Kopia reader, with a `code` callers branch on (the repository retries `missing` and
 * `upgrading`; the catalog tells a KopiaError, one unreadable repository, from a storage outage, which is
 * not one) and a message that starts with the repository location and blob; never a password or key, so it
 * may be logged as is.
 */
export class KopiaError extends Error {
  override readonly name = 'KopiaError'
  readonly code: KopiaErrorCode
  readonly location: string
  readonly blobId: string | undefined

  constructor(code: KopiaErrorCode, location: string, message: string, options: { blobId?: string; cause?: unknown } = {}) {
    const where = options.blobId === undefined ? `kopia repository ${location}` : `kopia repository ${location} blob ${options.blobId}`
    super(`${where}: ${message}`, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.location = location
    this.blobId = options.blobId
  }
}

/** Context passed down to parsers so that their errors can name where the bytes came from. */
export interface BlobContext {
  readonly location: string
  readonly blobId: string
}

/** A KopiaError `corrupt` for the blob in `ctx`: bytes that do not parse or authenticate. */
export function corrupt(ctx: BlobContext, message: string, cause?: unknown): KopiaError {
  return new KopiaError('corrupt', ctx.location, message, cause === undefined ? { blobId: ctx.blobId } : { blobId: ctx.blobId, cause })
}

/** A KopiaError `unsupported` for the blob in `ctx`: a feature this reader deliberately does not implement. */
export function unsupported(ctx: BlobContext, message: string): KopiaError {
  return new KopiaError('unsupported', ctx.location, message, { blobId: ctx.blobId })
}
