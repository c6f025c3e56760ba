// The content side of a poll: the decoded records of every live manifest content, read once per
// (content ID, pack, offset) and kept until the content stops being live; the per-source summary
// and the counts of what was read are recomputed only when the set of live contents changes.
import { manifestChunks } from './compression.ts'
import { type PackAccess, readContents } from './content-reader.ts'
import type { IndexEntry } from './index-entry.ts'
import { ManifestContentParser, type ManifestRecord } from './manifest-content.ts'
import { countManifests, type KopiaManifest, type KopiaSourceSnapshots, manifestView, mergeManifestRecords, summarizeSources } from './manifests.ts'
import type { KopiaManifestsRead, KopiaSnapshotsRead } from './read-summary.ts'

function contentKey(e: IndexEntry): string {
  return `${e.contentId}@${e.packBlobId}+${e.packOffset}`
}

export interface ManifestsView {
  readonly sources: readonly KopiaSourceSnapshots[]
  readonly manifests: KopiaManifestsRead
  readonly snapshots: KopiaSnapshotsRead
}

const EMPTY: ManifestsView = {
  sources: [],
  manifests: { ids: 0, live: 0, deleted: 0, liveByType: {} },
  snapshots: { complete: 0, incomplete: 0, unreadable: 0, sources: 0 },
}

/**
 * The decoded manifest records of one repository's live manifest contents, kept across polls in memory:
 * `update` reads only contents it has not read (from packs, through PackAccess) and forgets those no
 * longer live.
 */
export class ManifestCache {
  readonly #records = new Map<string, readonly ManifestRecord[]>()
  #liveSignature: string | undefined
  #liveKeys: readonly string[] = []
  #view: ManifestsView = EMPTY
  /** Manifest contents fetched and decoded so far (for stats and tests). */
  contentsRead = 0
  /** Snapshot manifests among the live manifests at the last change. */
  snapshotManifests = 0

  /**
   * Reads the live contents not read before (range reads, at most `concurrency` at once), then
   * merges. `live` must be sorted by content ID: ties between equal `modified` times resolve in
   * that order. Throws KopiaError 'missing' for a pack that vanished, 'corrupt' for bytes that do
   * not decrypt, decompress or parse.
   */
  async update(live: readonly IndexEntry[], access: PackAccess, concurrency: number, signal?: AbortSignal): Promise<ManifestsView> {
    const keys = live.map(contentKey)
    const signature = keys.join('\n')
    if (signature === this.#liveSignature) return this.#view
    const missing = live.filter((e, i) => !this.#records.has(keys[i] as string))
    await readContents(missing, access, async (entry, payload) => {
      const ctx = { location: access.location, blobId: `${entry.packBlobId} (content ${entry.contentId})` }
      // Decompressed, inflated and parsed chunk by chunk: a compacted content is ~77 MB of JSON for 100,000 manifests.
      const parser = new ManifestContentParser(ctx)
      await manifestChunks(entry.compressionHeaderId, payload, ctx, (chunk) => parser.push(chunk))
      this.#records.set(contentKey(entry), parser.end())
      this.contentsRead++
    }, { concurrency, signal })
    const wanted = new Set(keys)
    for (const key of this.#records.keys()) if (!wanted.has(key)) this.#records.delete(key)
    const merged = mergeManifestRecords(this.#inOrder(keys))
    const counts = countManifests(merged)
    for (const [id, record] of merged) if (record.deleted) merged.delete(id)
    const sources = summarizeSources(merged.values())
    this.snapshotManifests = counts.snapshots.complete + counts.snapshots.incomplete
    this.#view = { sources, manifests: counts.manifests, snapshots: { ...counts.snapshots, sources: sources.length } }
    this.#liveSignature = signature
    this.#liveKeys = keys
    return this.#view
  }

  /**
   * Every manifest ID of the last successful update, live or tombstone, sorted by ID; computed
   * from the records already held (no I/O).
   */
  manifests(): KopiaManifest[] {
    return manifestView(mergeManifestRecords(this.#inOrder(this.#liveKeys)))
  }

  #inOrder(keys: readonly string[]): (readonly ManifestRecord[])[] {
    return keys.map((key) => this.#records.get(key) ?? [])
  }
}
