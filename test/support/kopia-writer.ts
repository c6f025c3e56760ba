// Test-only: writes Kopia repositories the way the read path expects them (kopia-read-path.md):
// format blob (+ `.shards`), `q` packs of encrypted manifest contents, index blobs (epoch `xn`/
// `xs`/`xr` + `xe` markers, or format-v1 `n` blobs + `m` compaction logs). Everything goes through
// `put(key, bytes)` so the same writer can fill a directory or an S3 bucket. It never imports
// src/kopia: it is the independent second implementation the reader is checked against.
//
// What two real repositories written by kopia 0.23.1 showed (../shared/fixtures/kopia/real-repos,
// test/kopia/real-repos.test.ts), and this writer now does the same: index entries carry the
// repository's format version (3, not 2); blob names end in a session ID `s<16 hex>144`;
// maintenance rewrites contents into newer packs (live ones and deletion markers alike), so one
// content ID has entries in several packs; and beside the indexes lie blobs a reader must pass
// over: `xw<unix seconds>` deletion watermarks (plaintext), `_log_…` blobs, `kopia.blobcfg` and
// `kopia.maintenance` (writeRepositoryExtras).
import { randomBytes } from 'node:crypto'
import { deflateRawSync, gzipSync, zstdCompressSync } from 'node:zlib'
import { checksummedFormatBlob, contentHash, formatKeyFor, sealContent, sealFormat } from './kopia-crypto.ts'
import { buildFormatBlob, type BuiltFormat, type FormatOptions } from './kopia-format.ts'
import { buildIndexV1, buildIndexV2, type BuiltEntry } from './kopia-index-builder.ts'
import { goTime, type ManifestEntryJson, newManifestId, type SnapshotSpec, snapshotEntry, tombstone } from './kopia-manifests.ts'

export type WriterLayout =
  | { readonly kind: 'sharded'; readonly shards?: readonly number[]; readonly maxNonShardedLength?: number; readonly writeShardsFile?: boolean }
  | { readonly kind: 'flat'; readonly keyPrefix?: string }

export interface WriterOptions extends FormatOptions {
  readonly put: (key: string, bytes: Buffer) => Promise<void>
  readonly remove?: (key: string) => Promise<void>
  readonly layout?: WriterLayout
  /** Unix seconds of the writer's clock, which advances one second per write. */
  readonly startSeconds?: number
}

interface OpenPack {
  readonly id: string
  readonly chunks: Buffer[]
  size: number
}

export interface IndexBlobRecord {
  readonly kind: 'xn' | 'xs' | 'xr' | 'n'
  readonly epoch: number
  readonly entries: readonly BuiltEntry[]
  readonly length: number
}

function compress(id: number, data: Buffer): Buffer {
  const header = Buffer.alloc(4)
  header.writeUInt32BE(id)
  const family = id >> 8
  const body = family === 0x11 ? zstdCompressSync(data) : family === 0x15 ? deflateRawSync(data) : family === 0x10 || family === 0x13 ? gzipSync(data) : null
  if (body === null) throw new Error(`the test writer cannot compress with 0x${id.toString(16)}`)
  return Buffer.concat([header, body])
}

/** Kopia's merge rule, re-stated: newer, then live over deleted, then greater pack ID. */
function mergeEntries(lists: Iterable<readonly BuiltEntry[]>): BuiltEntry[] {
  const best = new Map<string, BuiltEntry>()
  for (const list of lists) {
    for (const e of list) {
      const b = best.get(e.contentId)
      const wins = !b || e.timestamp > b.timestamp || (e.timestamp === b.timestamp && (e.deleted !== b.deleted ? !e.deleted : e.packBlobId > b.packBlobId))
      if (wins) best.set(e.contentId, e)
    }
  }
  return [...best.values()]
}

export class KopiaTestWriter {
  format: BuiltFormat
  // kopia 0.23.1's session IDs as they appear in its blob names (kopia 0.19's ended in 132); the reader never parses them.
  readonly session = `s${randomBytes(8).toString('hex')}144`
  readonly indexBlobs = new Map<string, IndexBlobRecord>()
  writeEpoch = 0
  readonly #options: WriterOptions
  #clock: number
  #pendingManifests: ManifestEntryJson[] = []
  readonly #committed = new Map<string, ManifestEntryJson>()
  readonly #liveContents = new Map<string, BuiltEntry>()
  readonly #packs = new Map<'p' | 'q', OpenPack>()
  /** Every sealed content by `pack+offset`, so that a rewrite can copy it. */
  readonly #boxes = new Map<string, Buffer>()
  #pendingIndex: BuiltEntry[] = []

  private constructor(options: WriterOptions) {
    this.#options = options
    this.format = buildFormatBlob(options)
    this.#clock = options.startSeconds ?? 1_760_000_000
  }

  static async create(options: WriterOptions): Promise<KopiaTestWriter> {
    const writer = new KopiaTestWriter(options)
    const layout = writer.#layout()
    if (layout.kind === 'sharded' && layout.writeShardsFile !== false) {
      await options.put('.shards', Buffer.from(`${JSON.stringify({ default: writer.#shards(), maxNonShardedLength: layout.maxNonShardedLength ?? 20 })}\n`))
    }
    await writer.putBlob('kopia.repository', writer.format.bytes)
    return writer
  }

  #layout(): WriterLayout {
    return this.#options.layout ?? { kind: 'sharded' }
  }

  #shards(): readonly number[] {
    const layout = this.#layout()
    return layout.kind === 'sharded' ? (layout.shards ?? (this.format.version === 1 ? [3, 3] : [1, 3])) : []
  }

  keyOf(blobId: string): string {
    const layout = this.#layout()
    if (layout.kind === 'flat') return (layout.keyPrefix ?? '') + blobId
    if (blobId.length <= (layout.maxNonShardedLength ?? 20)) return `${blobId}.f`
    let rest = blobId
    const parts: string[] = []
    for (const width of this.#shards()) {
      if (rest.length <= width) break
      parts.push(rest.slice(0, width))
      rest = rest.slice(width)
    }
    return [...parts, `${rest}.f`].join('/')
  }

  async putBlob(blobId: string, bytes: Buffer): Promise<void> {
    await this.#options.put(this.keyOf(blobId), bytes)
  }

  async removeBlob(blobId: string): Promise<void> {
    if (!this.#options.remove) throw new Error('this writer has no remove()')
    await this.#options.remove(this.keyOf(blobId))
    this.indexBlobs.delete(blobId)
  }

  /** `kopia repository change-password`: same uniqueID and keys, format blob re-encrypted. */
  async changePassword(password: string, extra?: Record<string, unknown>): Promise<void> {
    const f = this.format
    this.format = buildFormatBlob({ ...this.#options, password, uniqueId: f.uniqueId, masterKey: f.masterKey, secret: f.secret, ...(extra ? { extra } : {}) })
    await this.putBlob('kopia.repository', this.format.bytes)
  }

  #tick(): number {
    return ++this.#clock
  }

  #now(): string {
    return goTime(this.#tick(), Math.floor(Math.random() * 1e9))
  }

  addSnapshot(spec: SnapshotSpec): string {
    const entry = snapshotEntry(spec, this.#now())
    this.#pendingManifests.push(entry)
    return entry.id
  }

  addManifest(labels: Record<string, string>, data: unknown): string {
    const entry = { id: newManifestId(), labels, modified: this.#now(), data }
    this.#pendingManifests.push(entry)
    return entry.id
  }

  deleteManifest(id: string): void {
    this.#pendingManifests.push(tombstone(id, this.#now()))
  }

  /** One manifest content holding the pending entries (kopia's flush); `compression` is applied even if it does not shrink. */
  flushManifests(options: { compression?: number } = {}): string {
    const entries = this.#pendingManifests
    this.#pendingManifests = []
    for (const e of entries) {
      if (e.deleted) this.#committed.delete(e.id)
      else this.#committed.set(e.id, e)
    }
    return this.#writeManifestContent(entries, options.compression ?? 0)
  }

  /** Kopia's manifest compaction: one content with every live entry, all older contents deleted. */
  compactManifests(options: { compression?: number } = {}): string {
    const id = this.#writeManifestContent([...this.#committed.values()], options.compression ?? 0)
    for (const [contentId, entry] of this.#liveContents) if (contentId !== id) this.deleteContent(contentId, entry)
    return id
  }

  deleteContent(contentId: string, entry = this.#liveContents.get(contentId)): void {
    if (!entry) throw new Error(`no live content ${contentId}`)
    this.#liveContents.delete(contentId)
    this.#pendingIndex.push({ ...entry, deleted: true, timestamp: this.#tick() })
  }

  #writeManifestContent(entries: readonly ManifestEntryJson[], compression: number): string {
    return this.writeManifestBytes(gzipSync(Buffer.from(`${JSON.stringify({ entries })}\n`)), compression)
  }

  /** An `m` content with exactly these plaintext bytes (normally gzip of the entries JSON): for damaged-content tests. */
  writeManifestBytes(plaintext: Buffer, compression = 0): string {
    return this.writeContent('m', plaintext, compression)
  }

  /**
   * A content with this prefix ('' for file data, 'k' for directories, 'm' for manifests) and
   * plaintext; prefixed contents go to `q` packs, data to `p` packs, as kopia splits them.
   */
  writeContent(prefix: '' | 'k' | 'm', plaintext: Buffer, compression = 0): string {
    if (compression !== 0 && this.format.indexVersion === 1) throw new Error('index v1 cannot record compression')
    const hash = contentHash(this.format.hash, this.format.secret, plaintext)
    const contentId = `${prefix}${hash.toString('hex')}`
    const payload = compression === 0 ? plaintext : compress(compression, plaintext)
    const box = sealContent(this.format.encryption, this.format.masterKey, hash.subarray(hash.length - 16), payload)
    const entry = this.#append(prefix === '' ? 'p' : 'q', box, {
      contentId, timestamp: this.#tick(), deleted: false, originalLength: plaintext.length, compressionHeaderId: compression, formatVersion: this.format.version,
    })
    this.#pendingIndex.push(entry)
    this.#liveContents.set(contentId, entry)
    return contentId
  }

  /** Puts a box at the end of the open pack of that kind and says where. */
  #append(kind: 'p' | 'q', box: Buffer, entry: Omit<BuiltEntry, 'packBlobId' | 'packOffset' | 'packedLength'>): BuiltEntry {
    const pack = this.#packs.get(kind) ?? this.#newPack(kind)
    const placed: BuiltEntry = { ...entry, packBlobId: pack.id, packOffset: pack.size, packedLength: box.length }
    pack.chunks.push(box)
    pack.size += box.length
    this.#boxes.set(`${placed.packBlobId}+${placed.packOffset}`, box)
    return placed
  }

  #newPack(kind: 'p' | 'q'): OpenPack {
    // v1 packs start with a checksummed copy of the format blob; v2/v3 with 32 random bytes.
    const preamble = this.format.version === 1 ? checksummedFormatBlob(this.format.bytes) : randomBytes(32)
    const pack = { id: `${kind}${randomBytes(16).toString('hex')}-${this.session}`, chunks: [preamble], size: preamble.length }
    this.#packs.set(kind, pack)
    return pack
  }

  /**
   * Kopia maintenance's content rewrite: copies these contents (live or deleted, as their newest
   * entry says) into a new pack with a newer timestamp; the old entries stay in their index blobs.
   * A deleted content is copied as a deleted entry, which is what kopia 0.23.1 left behind.
   */
  rewriteContents(entries: readonly BuiltEntry[]): BuiltEntry[] {
    return entries.map((old) => {
      const box = this.#boxes.get(`${old.packBlobId}+${old.packOffset}`)
      if (box === undefined) throw new Error(`no box for ${old.contentId}`)
      const { packBlobId: _pack, packOffset: _offset, packedLength: _length, ...rest } = old
      const entry = this.#append(old.contentId.length % 2 === 1 ? 'q' : 'p', box, { ...rest, timestamp: this.#tick() })
      this.#pendingIndex.push(entry)
      if (!entry.deleted) this.#liveContents.set(entry.contentId, entry)
      return entry
    })
  }

  /** The newest entry written so far for a content ID (live or deleted), for rewriteContents. */
  newestEntry(contentId: string): BuiltEntry {
    const all = [...[...this.indexBlobs.values()].flatMap((r) => r.entries), ...this.#pendingIndex].filter((e) => e.contentId === contentId)
    const newest = mergeEntries([all])[0]
    if (newest === undefined) throw new Error(`no entry for ${contentId}`)
    return newest
  }

  /**
   * The blobs kopia 0.23.1 keeps beside the indexes that a reader must pass over: an `xw` deletion
   * watermark (plaintext, named by unix seconds), `_log_…` blobs (encrypted by name, as kopia's
   * logs are), `kopia.blobcfg` (`{}` sealed with the format key, like the format box) and
   * `kopia.maintenance` (opaque here).
   */
  async writeRepositoryExtras(options: { logs?: number } = {}): Promise<void> {
    const seconds = this.#tick()
    await this.putBlob(`xw${seconds}`, Buffer.from('deletion-watermark'))
    for (let i = 0; i < (options.logs ?? 2); i++) {
      const stamp = new Date(this.#tick() * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14)
      const iv = randomBytes(16)
      const plaintext = gzipSync(Buffer.from('{"msg":"maintenance"}\n'))
      await this.putBlob(`_log_${stamp}_${randomBytes(2).toString('hex')}_${seconds}_${seconds}_1_${iv.toString('hex')}`, sealContent(this.format.encryption, this.format.masterKey, iv, plaintext))
    }
    await this.putBlob('kopia.blobcfg', sealFormat(Buffer.from('{}'), formatKeyFor(this.#options.password, this.format.uniqueId, this.#options.keyAlgorithm ?? 'scrypt-65536-8-1'), this.format.uniqueId))
    await this.putBlob('kopia.maintenance', randomBytes(512))
  }

  /** Writes the pending pack, then one index blob for everything written since the last flush. */
  async flushIndex(): Promise<string> {
    for (const pack of this.#packs.values()) await this.putBlob(pack.id, Buffer.concat(pack.chunks))
    this.#packs.clear()
    const entries = this.#pendingIndex
    this.#pendingIndex = []
    if (this.format.version === 1) return this.#writeIndex('n', '', entries, `-${this.session}`, 0)
    return this.#writeIndex('xn', `${this.writeEpoch}_`, entries, `-${this.session}-c1`, this.writeEpoch)
  }

  async #writeIndex(kind: IndexBlobRecord['kind'], infix: string, entries: readonly BuiltEntry[], suffix: string, epoch: number): Promise<string> {
    const plaintext = this.format.indexVersion === 1 ? buildIndexV1(entries) : buildIndexV2(entries)
    return this.#writeEncrypted(kind, `${kind}${infix}`, plaintext, suffix, epoch, entries)
  }

  async #writeEncrypted(kind: IndexBlobRecord['kind'] | 'm', prefix: string, plaintext: Buffer, suffix: string, epoch: number, entries: readonly BuiltEntry[]): Promise<string> {
    const hash = contentHash(this.format.hash, this.format.secret, plaintext)
    const hex = hash.toString('hex')
    const blobId = `${prefix}${hex}${suffix}`
    const box = sealContent(this.format.encryption, this.format.masterKey, Buffer.from(hex.slice(hex.length - 32), 'hex'), plaintext)
    await this.putBlob(blobId, box)
    if (kind !== 'm') this.indexBlobs.set(blobId, { kind, epoch, entries, length: box.length })
    return blobId
  }

  async advanceEpoch(): Promise<void> {
    this.writeEpoch++
    await this.putBlob(`xe${this.writeEpoch}`, Buffer.from('epoch-marker'))
  }

  #blobsOf(kind: IndexBlobRecord['kind'], epoch?: number): [string, IndexBlobRecord][] {
    return [...this.indexBlobs].filter(([, r]) => r.kind === kind && (epoch === undefined || r.epoch === epoch))
  }

  /** Single-epoch compaction into `parts` blobs of one set; `writeParts` < parts leaves the set incomplete. */
  async compactEpoch(epoch: number, options: { parts?: number; writeParts?: number; cleanup?: boolean } = {}): Promise<string[]> {
    const inputs = this.#blobsOf('xn', epoch)
    return this.#compactInto(inputs, (hexSuffix) => `-${hexSuffix}`, 'xs', `xs${epoch}_`, epoch, options)
  }

  /** Range checkpoint of epochs min..max from each epoch's compaction if present, else its uncompacted blobs. */
  async rangeCheckpoint(min: number, max: number, options: { cleanup?: boolean } = {}): Promise<string[]> {
    const inputs: [string, IndexBlobRecord][] = []
    for (let e = min; e <= max; e++) {
      const compacted = this.#blobsOf('xs', e)
      inputs.push(...(compacted.length > 0 ? compacted : this.#blobsOf('xn', e)))
    }
    return this.#compactInto(inputs, (s) => `-${s}`, 'xr', `xr${min}_${max}_`, max, options)
  }

  async #compactInto(inputs: [string, IndexBlobRecord][], suffix: (set: string) => string, kind: 'xs' | 'xr', prefix: string, epoch: number, options: { parts?: number; writeParts?: number; cleanup?: boolean }): Promise<string[]> {
    const merged = mergeEntries(inputs.map(([, r]) => r.entries))
    const parts = options.parts ?? 1
    const set = `s${randomBytes(8).toString('hex')}`
    const written: string[] = []
    for (let p = 0; p < (options.writeParts ?? parts); p++) {
      const share = merged.filter((_, i) => i % parts === p)
      const plaintext = this.format.indexVersion === 1 ? buildIndexV1(share) : buildIndexV2(share)
      written.push(await this.#writeEncrypted(kind, prefix, plaintext, `${suffix(set)}-c${parts}`, epoch, share))
    }
    if (options.cleanup) for (const [id] of inputs) await this.removeBlob(id)
    return written
  }

  /** Format v1: merge all `n` blobs into one and record it in an `m` compaction log. */
  async compactLegacy(options: { cleanup?: boolean } = {}): Promise<string> {
    const inputs = this.#blobsOf('n')
    const output = await this.#writeIndex('n', '', mergeEntries(inputs.map(([, r]) => r.entries)), '', 0)
    const meta = (id: string) => ({ id, length: this.indexBlobs.get(id)?.length ?? 0, timestamp: goTime(this.#tick()) })
    const log = Buffer.from(JSON.stringify({ inputMetadata: inputs.map(([id]) => meta(id)), outputMetadata: [meta(output)] }))
    await this.#writeEncrypted('m', 'm', log, '', 0, [])
    if (options.cleanup) for (const [id] of inputs) await this.removeBlob(id)
    return output
  }
}
