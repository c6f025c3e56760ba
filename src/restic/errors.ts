// Everything that can go wrong reading a restic repository, as one error type whose message names
// the repository and the file, so an operator reading a catalog error knows where to look.

export type ResticErrorCode =
  /** No `config` at the store root. */
  | 'not-a-repository'
  /** `keys/` holds no key file. */
  | 'no-keys'
  /** Key files exist, none opens with the password. */
  | 'wrong-password'
  /** Key files exist, none can even be tried (malformed, unknown KDF, absurd scrypt cost). */
  | 'unusable-keys'
  /** MAC mismatch, truncation, undecodable compression or JSON. */
  | 'corrupt'
  /** A repository version (or encoding) this reader does not know. */
  | 'unsupported'
  /** Decrypts fine but is not the document it should be (config, snapshot). */
  | 'invalid'
  /** The blob store failed (network, permissions). */
  | 'storage'

/**
 * Every failure of the restic reader, with a `code` callers branch on (in an s3-prefix source `storage`
 * fails the whole poll, any other code makes one repository unreadable) and a message that names the
 * repository and file, never a password or key.
 */
export class ResticError extends Error {
  override readonly name = 'ResticError'
  readonly code: ResticErrorCode
  /** The store's location, e.g. `s3://bucket/repo/` or `/mnt/repo/`. */
  readonly location: string
  /** The file (or directory, ending in '/') relative to the repository root, e.g. `snapshots/<id>`. */
  readonly file: string

  constructor(code: ResticErrorCode, location: string, file: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.location = location
    this.file = file
  }
}
