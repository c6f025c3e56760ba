// Read-only blob storage as the catalog readers see it: keys are '/'-separated paths relative to
// the store's root, listed in byte order. restic/ and kopia/ read through this, never through S3
// or the filesystem directly, so every reader works on both.

export interface BlobInfo {
  /** Key relative to the store root, '/'-separated. */
  readonly key: string
  readonly size: number
  /** Last modification, ms since epoch. */
  readonly modifiedMs: number
}

export interface ListOptions {
  /** With '/', keys below the next '/' after the prefix are rolled up into `prefixes`. */
  readonly delimiter?: '/'
  /** Only keys strictly greater than this (byte order). */
  readonly startAfter?: string
  /** At most this many keys and prefixes in the page (S3's MaxKeys; S3 caps it at 1,000, its default). */
  readonly maxKeys?: number
  readonly signal?: AbortSignal
}

export interface BlobPage {
  readonly blobs: readonly BlobInfo[]
  /** Common prefixes (each ends with the delimiter), only when a delimiter was given. */
  readonly prefixes: readonly string[]
  /** Opaque token for the next page; absent on the last page. */
  readonly next?: string
}

export interface BlobStore {
  /** Where this store reads, for messages: `s3://bucket/prefix/` or a directory path. Never a secret. */
  readonly location: string
  /** One page of keys starting with `prefix`; pass `next` back as `continuation` for the following page. */
  listPage(prefix: string, options?: ListOptions & { readonly continuation?: string }): Promise<BlobPage>
  /** Whole blob. Throws BlobNotFoundError when it does not exist. */
  get(key: string, signal?: AbortSignal): Promise<Buffer>
  /** `length` bytes from `offset`. Throws BlobNotFoundError when it does not exist, BlobStoreError when the blob is shorter. */
  getRange(key: string, offset: number, length: number, signal?: AbortSignal): Promise<Buffer>
  /** null when the blob does not exist. */
  stat(key: string, signal?: AbortSignal): Promise<BlobInfo | null>
  /** A view rooted at `prefix` (which should end with '/'), sharing this store's connection. */
  sub(prefix: string): BlobStore
}

/**
 * A storage failure (network, permissions, an answer S3 or the filesystem gives), with a message that
 * names the location and never a credential; readers turn it into their own error with this as the cause.
 */
export class BlobStoreError extends Error {
  override readonly name: string = 'BlobStoreError'
}

/**
 * The blob `key` does not exist: distinct from BlobStoreError so that readers can treat absence (often
 * expected) apart from failure.
 */
export class BlobNotFoundError extends BlobStoreError {
  override readonly name = 'BlobNotFoundError'
  readonly key: string
  constructor(location: string, key: string) {
    super(`${location}${key} does not exist`)
    this.key = key
  }
}

/** Every page of a listing, concatenated. */
export async function listAll(store: BlobStore, prefix: string, options: ListOptions = {}): Promise<{ blobs: BlobInfo[]; prefixes: string[] }> {
  const blobs: BlobInfo[] = []
  const prefixes: string[] = []
  let continuation: string | undefined
  do {
    const page = await store.listPage(prefix, continuation === undefined ? options : { ...options, continuation })
    blobs.push(...page.blobs)
    prefixes.push(...page.prefixes)
    continuation = page.next
  } while (continuation !== undefined)
  return { blobs, prefixes }
}
