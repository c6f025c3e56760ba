// Reads contents out of pack blobs: range reads (neighbouring contents of one pack merged into one
// request) and per-content decryption with the IV from the content ID; decompression is the
// consumer's, so that a large content can be decompressed as a stream.
import { type BlobStore, BlobNotFoundError, BlobStoreError } from '../storage/blob-store.ts'
import type { BlobLayout } from './blob-layout.ts'
import { forEachLimit } from '../async/for-each-limit.ts'
import { type ContentDecryptor, packedContentIv } from './content-crypto.ts'
import { corrupt, KopiaError, unsupported } from './errors.ts'
import type { IndexEntry } from './index-entry.ts'

/** Contents closer than this in one pack are fetched in one request (the gap is read and dropped). */
const MERGE_GAP = 256 * 1024
const MAX_SPAN = 32 * 1024 * 1024

export interface PackAccess {
  readonly store: BlobStore
  readonly layout: BlobLayout
  readonly decryptor: ContentDecryptor
  readonly location: string
}

interface Span {
  readonly packBlobId: string
  readonly start: number
  end: number
  readonly entries: IndexEntry[]
}

/**
 * Groups contents by pack and merges neighbours (gap at most 256 KiB, span at most 32 MiB, offsets in
 * bytes) into one range read each, so reading many small manifests costs few requests. Pure.
 */
export function planSpans(entries: readonly IndexEntry[]): Span[] {
  const byPack = new Map<string, IndexEntry[]>()
  for (const e of entries) {
    const list = byPack.get(e.packBlobId)
    if (list) list.push(e)
    else byPack.set(e.packBlobId, [e])
  }
  const spans: Span[] = []
  for (const [packBlobId, list] of byPack) {
    list.sort((a, b) => a.packOffset - b.packOffset)
    let span: Span | undefined
    for (const e of list) {
      const end = e.packOffset + e.packedLength
      if (span && e.packOffset >= span.start && e.packOffset <= span.end + MERGE_GAP && end - span.start <= MAX_SPAN) {
        span.end = Math.max(span.end, end)
        span.entries.push(e)
      } else {
        span = { packBlobId, start: e.packOffset, end, entries: [e] }
        spans.push(span)
      }
    }
  }
  return spans
}

async function fetchSpan(span: Span, access: PackAccess, signal: AbortSignal | undefined): Promise<Buffer> {
  try {
    return await access.store.getRange(access.layout.keyOf(span.packBlobId), span.start, span.end - span.start, signal)
  } catch (error) {
    if (error instanceof BlobNotFoundError) throw new KopiaError('missing', access.location, 'pack blob is missing (deleted by maintenance after this index was read?)', { blobId: span.packBlobId, cause: error })
    if (error instanceof BlobStoreError) throw new KopiaError('corrupt', access.location, `cannot read bytes ${span.start}-${span.end}: ${error.message}`, { blobId: span.packBlobId, cause: error })
    throw error
  }
}

/**
 * The decrypted payload of one content given the bytes at its index entry's range: still
 * compressed as `entry.compressionHeaderId` says (manifestChunks undoes it).
 * Throws KopiaError `unsupported` for a reserved encryption key ID, `corrupt` when it does not decrypt.
 */
export function decryptContent(entry: IndexEntry, box: Buffer, access: PackAccess): Buffer {
  const ctx = { location: access.location, blobId: entry.packBlobId }
  if (entry.encryptionKeyId !== 0) throw unsupported(ctx, `content ${entry.contentId} uses encryption key ID ${entry.encryptionKeyId} (reserved; kopia rejects it too)`)
  const iv = packedContentIv(entry.contentId)
  if (iv === null) throw corrupt(ctx, `content ID ${entry.contentId} is too short to carry an IV`)
  const plaintext = access.decryptor.open(box, iv)
  if (plaintext === null) throw corrupt(ctx, `content ${entry.contentId} at offset ${entry.packOffset} (${entry.packedLength} bytes) does not decrypt`)
  return plaintext
}

/**
 * Reads every entry's content, calling `onContent` with its decrypted payload, still compressed
 * as the entry's compressionHeaderId says (so a large content can be decompressed as a stream), as
 * each arrives (in no particular order). Throws KopiaError `missing` for a vanished pack, `corrupt`
 * for an unreadable range or a content that does not decrypt, and whatever `onContent` throws.
 */
export async function readContents(
  entries: readonly IndexEntry[],
  access: PackAccess,
  onContent: (entry: IndexEntry, payload: Buffer) => void | Promise<void>,
  options: { readonly concurrency: number; readonly signal?: AbortSignal | undefined },
): Promise<void> {
  await forEachLimit(planSpans(entries), options.concurrency, async (span) => {
    const bytes = await fetchSpan(span, access, options.signal)
    for (const entry of span.entries) {
      const at = entry.packOffset - span.start
      await onContent(entry, decryptContent(entry, bytes.subarray(at, at + entry.packedLength), access))
    }
  }, options.signal)
}
