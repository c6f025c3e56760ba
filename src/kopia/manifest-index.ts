// The index side of a poll: list index blobs, pick the current ones, read only those not seen
// before (blob names are content hashes, so a name never changes meaning), keep just their `m`
// entries, and merge them into the set of live manifest contents.
import { BlobNotFoundError } from '../storage/blob-store.ts'
import type { BlobMeta } from './blob-layout.ts'
import { forEachLimit } from '../async/for-each-limit.ts'
import type { PackAccess } from './content-reader.ts'
import { KopiaError } from './errors.ts'
import { decryptNamedBlob, parseIndex } from './index-blob.ts'
import { type IndexEntry, supersedes } from './index-entry.ts'
import { type CompactionLog, parseCompactionLog, selectEpochIndexes, selectLegacyIndexes } from './index-set.ts'
import type { KopiaIndexRead, KopiaManifestContentsRead } from './read-summary.ts'

/** Written into a format-v1 repository when it is upgraded: the legacy view is no longer valid. */
export const LEGACY_POISON_PREFIX = 'n00000000000000000000000000000000-repository_unreadable'
const MANIFEST_PREFIX = 'm'

export interface IndexView {
  /** False when the listing is exactly the previous one: nothing else was computed. */
  readonly changed: boolean
  /** Live (non-deleted) manifest contents, by content ID. */
  readonly live: readonly IndexEntry[]
  /** What the current index set holds (for diagnostics). */
  readonly index: KopiaIndexRead
  readonly manifestContents: KopiaManifestContentsRead
}

/** One index blob as kept: its manifest entries and how many entries it holds in all. */
interface IndexBlobRead {
  readonly manifestEntries: readonly IndexEntry[]
  readonly totalEntries: number
}

const NOTHING_READ: Pick<IndexView, 'index' | 'manifestContents'> = {
  index: { blobs: 0, entries: 0, manifestEntries: 0 },
  manifestContents: { ids: 0, live: 0, packs: 0 },
}

/**
 * The manifest entries of one repository's current index blobs (epoch or legacy format), kept across polls
 * in memory: `refresh` lists the index blobs, reads only the new ones, and forgets blobs that left
 * storage.
 */
export class ManifestIndex {
  readonly #access: PackAccess
  readonly #epochEnabled: boolean
  readonly #entries = new Map<string, IndexBlobRead>()
  readonly #logs = new Map<string, CompactionLog>()
  #listingSignature = ''
  #view: IndexView = { changed: false, live: [], ...NOTHING_READ }
  /** Index blobs and compaction logs fetched so far (for stats and tests). */
  blobsRead = 0

  constructor(access: PackAccess, epochEnabled: boolean) {
    this.#access = access
    this.#epochEnabled = epochEnabled
  }

  /**
   * Lists the index blobs, reads those not seen before (at most `concurrency` at once) and returns
   * the live manifest contents with the counts of the current index set. An unchanged listing
   * costs the listing only. Throws KopiaError 'missing' when a listed blob vanished before it was
   * read (the caller relists), 'corrupt' for bytes that do not decrypt or parse.
   */
  async refresh(concurrency: number, signal?: AbortSignal): Promise<IndexView> {
    const layout = this.#access.layout
    const listed = this.#epochEnabled ? await layout.list('x', signal) : [...(await layout.list('n', signal)), ...(await layout.list('m', signal))]
    const signature = listed.map((b) => `${b.id}:${b.size}`).join('\n')
    if (signature === this.#listingSignature) return { ...this.#view, changed: false }

    const active = this.#epochEnabled ? selectEpochIndexes(listed).active : await this.#legacyActive(listed, concurrency, signal)
    const toRead = active.filter((b) => !this.#entries.has(b.id))
    await forEachLimit(toRead, concurrency, async (blob) => {
      const ctx = { location: this.#access.location, blobId: blob.id }
      const plaintext = decryptNamedBlob(await this.#get(blob, signal), this.#access.decryptor, ctx)
      this.blobsRead++
      const parsed = parseIndex(plaintext, ctx)
      this.#entries.set(blob.id, { manifestEntries: parsed.entriesWithPrefix(MANIFEST_PREFIX), totalEntries: parsed.entryCount })
    }, signal)
    // Forget blobs that are gone from storage; superseded-but-present ones stay cached (cheap, and
    // they may become current again if a compaction set turns out incomplete).
    const present = new Set(listed.map((b) => b.id))
    for (const id of this.#entries.keys()) if (!present.has(id)) this.#entries.delete(id)
    for (const id of this.#logs.keys()) if (!present.has(id)) this.#logs.delete(id)

    const winners = new Map<string, IndexEntry>()
    let entries = 0
    let manifestEntries = 0
    for (const blob of active) {
      const read = this.#entries.get(blob.id)
      if (read === undefined) continue
      entries += read.totalEntries
      manifestEntries += read.manifestEntries.length
      for (const entry of read.manifestEntries) {
        const previous = winners.get(entry.contentId)
        if (previous === undefined || supersedes(entry, previous)) winners.set(entry.contentId, entry)
      }
    }
    const live = [...winners.values()].filter((e) => !e.deleted).sort((a, b) => (a.contentId < b.contentId ? -1 : a.contentId > b.contentId ? 1 : 0))
    this.#listingSignature = signature
    this.#view = {
      changed: true,
      live,
      index: { blobs: active.length, entries, manifestEntries },
      manifestContents: { ids: winners.size, live: live.length, packs: new Set(live.map((e) => e.packBlobId)).size },
    }
    return this.#view
  }

  /** Forget the listing so the next refresh recomputes (after a failed poll). */
  invalidate(): void {
    this.#listingSignature = ''
  }

  async #legacyActive(listed: readonly BlobMeta[], concurrency: number, signal: AbortSignal | undefined): Promise<BlobMeta[]> {
    const indexBlobs = listed.filter((b) => b.id.startsWith('n'))
    if (indexBlobs.some((b) => b.id.startsWith(LEGACY_POISON_PREFIX))) {
      throw new KopiaError('upgrading', this.#access.location, 'the repository has been upgraded past format version 1 since it was opened; re-open it', { blobId: LEGACY_POISON_PREFIX })
    }
    const logs = listed.filter((b) => b.id.startsWith('m') && !this.#logs.has(b.id))
    await forEachLimit(logs, concurrency, async (blob) => {
      const ctx = { location: this.#access.location, blobId: blob.id }
      let bytes: Buffer
      try {
        bytes = await this.#access.store.get(blob.key, signal)
      } catch (error) {
        if (error instanceof BlobNotFoundError) return // kopia skips logs deleted while listing
        throw error
      }
      this.blobsRead++
      this.#logs.set(blob.id, parseCompactionLog(decryptNamedBlob(bytes, this.#access.decryptor, ctx), ctx))
    }, signal)
    const known = listed.flatMap((b) => { const log = this.#logs.get(b.id); return log ? [log] : [] })
    return selectLegacyIndexes(indexBlobs, known)
  }

  async #get(blob: BlobMeta, signal: AbortSignal | undefined): Promise<Buffer> {
    try {
      return await this.#access.store.get(blob.key, signal)
    } catch (error) {
      if (error instanceof BlobNotFoundError) throw new KopiaError('missing', this.#access.location, 'index blob vanished after listing (compaction cleanup?)', { blobId: blob.id, cause: error })
      throw error
    }
  }
}
