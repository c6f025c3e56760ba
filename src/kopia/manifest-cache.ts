// The content side of a poll: the decoded records of every live manifest content, read once per
// (content ID, pack, offset) and kept until the content stops being live; the per-source summary
// is recomputed only when the set of live contents changes.
import { gunzipManifest } from './compression.ts'
import { type PackAccess, readContents } from './content-reader.ts'
import type { IndexEntry } from './index-entry.ts'
import { type ManifestRecord, parseManifestContent } from './manifest-content.ts'
import { type KopiaSourceSnapshots, mergeManifests, summarizeSources } from './manifests.ts'

function contentKey(e: IndexEntry): string {
  return `${e.contentId}@${e.packBlobId}+${e.packOffset}`
}

export class ManifestCache {
  readonly #records = new Map<string, readonly ManifestRecord[]>()
  #liveSignature: string | undefined
  #summary: readonly KopiaSourceSnapshots[] = []
  /** Manifest contents fetched and decoded so far (for stats and tests). */
  contentsRead = 0
  /** Snapshot manifests among the live manifests at the last change. */
  snapshotManifests = 0

  /** `live` must be sorted by content ID: ties between equal `modified` times resolve in that order. */
  async update(live: readonly IndexEntry[], access: PackAccess, concurrency: number, signal?: AbortSignal): Promise<readonly KopiaSourceSnapshots[]> {
    const keys = live.map(contentKey)
    const signature = keys.join('\n')
    if (signature === this.#liveSignature) return this.#summary
    const missing = live.filter((e, i) => !this.#records.has(keys[i] as string))
    await readContents(missing, access, async (entry, data) => {
      const ctx = { location: access.location, blobId: `${entry.packBlobId} (content ${entry.contentId})` }
      this.#records.set(contentKey(entry), parseManifestContent(await gunzipManifest(data, ctx), ctx))
      this.contentsRead++
    }, { concurrency, signal })
    const wanted = new Set(keys)
    for (const key of this.#records.keys()) if (!wanted.has(key)) this.#records.delete(key)
    const merged = mergeManifests(keys.map((key) => this.#records.get(key) ?? []))
    let snapshots = 0
    for (const record of merged.values()) if (record.snapshot !== null) snapshots++
    this.snapshotManifests = snapshots
    this.#summary = summarizeSources(merged.values())
    this.#liveSignature = signature
    return this.#summary
  }
}
