// A Kopia repository opened read-only with just its password and its blob storage: no kopia
// binary, cache directory or connection config. `poll()` lists the index blobs and returns the
// newest complete snapshot per source; everything already read is kept, so a repeated poll of an
// unchanged repository costs one listing.
import { type BlobStore, BlobNotFoundError } from '../storage/blob-store.ts'
import { type BlobLayout, detectLayout } from './blob-layout.ts'
import { ContentDecryptor } from './content-crypto.ts'
import type { PackAccess } from './content-reader.ts'
import { KopiaError } from './errors.ts'
import { FORMAT_BLOB_ID, type FormatBlob, isUpgradeLocked, parseFormatBlob, type RepositoryFormat, unlockFormat, upgradeLockedError } from './format-blob.ts'
import type { FormatParameters } from './format-parameters.ts'
import { ManifestCache } from './manifest-cache.ts'
import { ManifestIndex } from './manifest-index.ts'
import type { KopiaManifest, KopiaSourceSnapshots } from './manifests.ts'
import { type PasswordVerdict, passwordVerdict } from './password-check.ts'
import type { KopiaReadSummary } from './read-summary.ts'

export type { KopiaManifest, KopiaSourceSnapshots } from './manifests.ts'
export type { KopiaReadSummary } from './read-summary.ts'

export interface KopiaOpenOptions {
  readonly signal?: AbortSignal
  /** Skip detection: e.g. a FlatLayout whose S3 key prefix does not end in '/' ("snapshot-"). */
  readonly layout?: BlobLayout
  /** Re-read kopia.repository at most this often; kopia's own cache lifetime is 15 minutes. */
  readonly formatRefreshMs?: number
  /** Blob reads in flight at once. */
  readonly concurrency?: number
  readonly now?: () => number
}

export interface KopiaPollStats {
  readonly polls: number
  readonly indexBlobsRead: number
  readonly contentsRead: number
  readonly snapshotManifests: number
}

/** One poll: the newest complete snapshot per source, and what was read to find them. */
export interface KopiaPollResult {
  readonly sources: readonly KopiaSourceSnapshots[]
  readonly read: KopiaReadSummary
}

// Blobs can vanish between listing and reading when maintenance runs; kopia relists and retries.
const ATTEMPTS = 3
const DEFAULT_FORMAT_REFRESH_MS = 15 * 60_000
const DEFAULT_CONCURRENCY = 16

interface Opened {
  readonly bytes: Buffer
  readonly blob: FormatBlob
  readonly format: RepositoryFormat
}

async function readFormat(store: BlobStore, layout: BlobLayout, password: string, signal: AbortSignal | undefined): Promise<Opened> {
  const ctx = { location: store.location, blobId: FORMAT_BLOB_ID }
  let bytes: Buffer
  try {
    bytes = await store.get(layout.keyOf(FORMAT_BLOB_ID), signal)
  } catch (error) {
    if (error instanceof BlobNotFoundError) throw new KopiaError('not-a-repository', store.location, 'kopia.repository does not exist', { blobId: FORMAT_BLOB_ID, cause: error })
    throw error
  }
  const blob = parseFormatBlob(bytes, ctx)
  return { bytes, blob, format: await unlockFormat(blob, password, ctx, signal) }
}

/**
 * A Kopia repository opened read-only with its password, over a BlobStore: `open` reads and decrypts
 * kopia.repository (deriving the key on the threadpool), `poll` reads the index and manifests
 * incrementally and returns the newest complete snapshot per source. Re-reads kopia.repository every
 * `formatRefreshMs` (15 min) to follow a password change, an upgrade or a replaced repository. Holds the
 * password and master key in memory; never log the instance.
 */
export class KopiaRepository {
  readonly location: string
  /** Hex of the repository's uniqueID (as `kopia repository status` shows it). */
  readonly uniqueId: string
  readonly layout: BlobLayout
  readonly #store: BlobStore
  readonly #password: string
  readonly #options: KopiaOpenOptions
  #opened: Opened
  #formatReadAt: number
  #access: PackAccess
  #index: ManifestIndex
  #manifests = new ManifestCache()
  #polls = 0
  #running: Promise<unknown> = Promise.resolve()

  private constructor(store: BlobStore, layout: BlobLayout, password: string, opened: Opened, options: KopiaOpenOptions) {
    this.location = store.location
    this.uniqueId = opened.blob.uniqueId.toString('hex')
    this.layout = layout
    this.#store = store
    this.#password = password
    this.#options = options
    this.#opened = opened
    this.#formatReadAt = this.#now()
    this.#access = this.#accessFor(opened.format)
    this.#index = new ManifestIndex(this.#access, opened.format.epochEnabled)
  }

  /**
   * Detects the layout (unless `options.layout` is given) and unlocks kopia.repository with `password`.
   * Throws KopiaError `not-a-repository`, `wrong-password`, `unsupported` or `corrupt`, the store's error,
   * or the signal's abort.
   */
  static async open(store: BlobStore, password: string, options: KopiaOpenOptions = {}): Promise<KopiaRepository> {
    const layout = options.layout ?? (await detectLayout(store, options.signal))
    const opened = await readFormat(store, layout, password, options.signal)
    return new KopiaRepository(store, layout, password, opened, options)
  }

  get formatVersion(): number {
    return this.#opened.format.version
  }

  /** The decrypted repository parameters without key material (hash, encryption, versions, epoch settings). */
  get parameters(): FormatParameters {
    return this.#opened.format.parameters
  }

  /** The outer format blob (salt, key algorithm, encrypted parameters): nothing secret. */
  get formatBlob(): FormatBlob {
    return this.#opened.blob
  }

  get stats(): KopiaPollStats {
    return { polls: this.#polls, indexBlobsRead: this.#index.blobsRead, contentsRead: this.#manifests.contentsRead, snapshotManifests: this.#manifests.snapshotManifests }
  }

  /** Whether `password` opens this repository, from the derived-key cache only (see password-check.ts). */
  checkPassword(password: string): PasswordVerdict {
    return passwordVerdict(this.#opened.blob, password)
  }

  /** Current snapshot summary per source; incremental across calls. Concurrent calls run one after another. */
  async poll(signal?: AbortSignal): Promise<readonly KopiaSourceSnapshots[]> {
    return (await this.pollDetailed(signal)).sources
  }

  /**
   * poll() plus the counts of what it read (index blobs, manifest contents, manifests by type,
   * snapshots), for diagnostics. Same errors as poll(): KopiaError (wrong-password after a
   * password change, corrupt, missing after retries, upgrading, changed) or the storage's own.
   */
  pollDetailed(signal?: AbortSignal): Promise<KopiaPollResult> {
    const run = this.#running.then(() => this.#poll(signal), () => this.#poll(signal))
    this.#running = run.catch(() => undefined)
    return run
  }

  /**
   * Every manifest ID of the last successful poll (live and tombstones, sorted by ID) with its
   * type, labels (non-snapshot manifests) and modification time; no I/O. Empty before a poll.
   */
  manifests(): KopiaManifest[] {
    return this.#manifests.manifests()
  }

  async #poll(signal: AbortSignal | undefined): Promise<KopiaPollResult> {
    signal?.throwIfAborted()
    this.#polls++
    if (this.#now() - this.#formatReadAt >= (this.#options.formatRefreshMs ?? DEFAULT_FORMAT_REFRESH_MS)) await this.#refreshFormat(signal)
    const concurrency = this.#options.concurrency ?? DEFAULT_CONCURRENCY
    for (let attempt = 1; ; attempt++) {
      const lock = this.#opened.format.upgradeLock
      if (lock && isUpgradeLocked(lock, this.#now())) throw upgradeLockedError(lock, this.location)
      try {
        const index = await this.#index.refresh(concurrency, signal)
        const view = await this.#manifests.update(index.live, this.#access, concurrency, signal)
        return { sources: view.sources, read: { index: index.index, manifestContents: index.manifestContents, manifests: view.manifests, snapshots: view.snapshots } }
      } catch (error) {
        this.#index.invalidate()
        if (!(error instanceof KopiaError) || attempt >= ATTEMPTS) throw error
        if (error.code === 'upgrading') await this.#refreshFormat(signal) // a v1 repository upgraded under us
        else if (error.code !== 'missing') throw error
      }
    }
  }

  async #refreshFormat(signal: AbortSignal | undefined): Promise<void> {
    const key = this.layout.keyOf(FORMAT_BLOB_ID)
    const bytes = await this.#store.get(key, signal).catch((error: unknown) => {
      if (error instanceof BlobNotFoundError) throw new KopiaError('not-a-repository', this.location, 'kopia.repository has disappeared', { blobId: FORMAT_BLOB_ID, cause: error })
      throw error
    })
    this.#formatReadAt = this.#now()
    if (bytes.equals(this.#opened.bytes)) return
    const opened = await readFormat(this.#store, this.layout, this.#password, signal)
    if (opened.blob.uniqueId.toString('hex') !== this.uniqueId) {
      throw new KopiaError('changed', this.location, `now holds a different repository (uniqueID ${opened.blob.uniqueId.toString('hex')}, opened as ${this.uniqueId})`, { blobId: FORMAT_BLOB_ID })
    }
    const previous = this.#opened.format
    this.#opened = opened
    // A password change re-encrypts the same parameters; anything else starts over.
    if (!opened.format.masterKey.equals(previous.masterKey) || opened.format.encryption !== previous.encryption || opened.format.epochEnabled !== previous.epochEnabled) {
      this.#access = this.#accessFor(opened.format)
      this.#index = new ManifestIndex(this.#access, opened.format.epochEnabled)
      this.#manifests = new ManifestCache()
    }
  }

  #accessFor(format: RepositoryFormat): PackAccess {
    return { store: this.#store, layout: this.layout, decryptor: new ContentDecryptor(format.encryption, format.masterKey), location: this.location }
  }

  #now(): number {
    return this.#options.now?.() ?? Date.now()
  }
}
