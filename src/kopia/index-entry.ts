// One content's location as an index blob records it, the shape shared by index v1 and v2, and
// kopia's rule for which of several records of the same content wins.

export interface IndexEntry {
  /** Text form: optional prefix letter (g-z) then the hash in lowercase hex, e.g. `m…` for manifests. */
  readonly contentId: string
  /** Unix seconds. */
  readonly timestamp: number
  readonly deleted: boolean
  readonly packBlobId: string
  readonly packOffset: number
  readonly packedLength: number
  readonly originalLength: number
  /** 0 = stored uncompressed. */
  readonly compressionHeaderId: number
  readonly formatVersion: number
  readonly encryptionKeyId: number
}

/** A parsed (decrypted) index blob. Entries are decoded on demand so unused ones cost nothing. */
export interface ParsedIndex {
  readonly version: 1 | 2
  readonly entryCount: number
  entryAt(position: number): IndexEntry
  /** All entries whose content ID starts with this prefix letter, found by binary search. */
  entriesWithPrefix(prefix: string): IndexEntry[]
}

/** Index key bytes -> content ID text: first byte is the prefix letter's code, or 0 for none. */
export function contentIdFromKey(data: Buffer, start: number, keySize: number): string {
  const prefix = data[start] ?? 0
  const hash = data.toString('hex', start + 1, start + keySize)
  return prefix === 0 ? hash : String.fromCharCode(prefix) + hash
}

/**
 * Position range [from, to) of keys starting with `prefixByte`, in a table of `count` sorted keys
 * of `stride` bytes each starting at `base`. Keys sort bytewise, so one prefix is contiguous.
 */
export function prefixRange(data: Buffer, base: number, stride: number, count: number, prefixByte: number): [number, number] {
  const firstAtLeast = (value: number) => {
    let lo = 0
    let hi = count
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((data[base + mid * stride] ?? 0) < value) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  return [firstAtLeast(prefixByte), firstAtLeast(prefixByte + 1)]
}

/** Kopia's contentInfoGreaterThan: newer timestamp, then live over deleted, then the greater pack ID. */
export function supersedes(a: IndexEntry, b: IndexEntry): boolean {
  if (a.timestamp !== b.timestamp) return a.timestamp > b.timestamp
  if (a.deleted !== b.deleted) return !a.deleted
  return a.packBlobId > b.packBlobId
}
