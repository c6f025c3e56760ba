// Index format v2 (kopia ≥ 0.9): 17-byte header, sorted fixed-stride (key ‖ entry) records, a pack
// table (u8 name length, u32 absolute name offset), a format table (u32 compression ID, u8 format
// version, u8 encryption key ID), then the pack names. Layout confirmed on real kopia 0.19 blobs.
import { type BlobContext, corrupt } from './errors.ts'
import { contentIdFromKey, type IndexEntry, type ParsedIndex, prefixRange } from './index-entry.ts'

const HEADER_SIZE = 17
const PACK_INFO_SIZE = 5
const FORMAT_INFO_SIZE = 6
const MIN_ENTRY_SIZE = 16
const MAX_ENTRY_SIZE = 19
const MAX_STRIDE = 256

interface FormatInfo {
  readonly compressionHeaderId: number
  readonly formatVersion: number
  readonly encryptionKeyId: number
}

/**
 * A view over a decrypted v2 index blob: entries are decoded when looked up, not copied. Throws KopiaError
 * `corrupt` when the header is invalid, the stride is too big or the declared tables do not fit in `data`.
 */
export function openIndexV2(data: Buffer, ctx: BlobContext): ParsedIndex {
  if (data.length < HEADER_SIZE) throw corrupt(ctx, `index v2 is ${data.length} bytes, shorter than its header`)
  if (data[0] !== 2) throw corrupt(ctx, `index version byte is ${data[0]}, not 2`)
  const keySize = data.readUInt8(1)
  const entrySize = data.readUInt16BE(2)
  const entryCount = data.readUInt32BE(4)
  const packCount = data.readUInt32BE(8)
  const formatCount = data.readUInt8(12)
  const baseTimestamp = data.readUInt32BE(13)
  // The same sanity checks kopia applies before trusting any offset.
  if (keySize <= 1 || entrySize < MIN_ENTRY_SIZE || entrySize > MAX_ENTRY_SIZE) {
    throw corrupt(ctx, `index v2 header is invalid (key size ${keySize}, entry size ${entrySize})`)
  }
  const stride = keySize + entrySize
  if (stride > MAX_STRIDE) throw corrupt(ctx, `index v2 entry stride ${stride} is too big`)
  const packsOffset = HEADER_SIZE + entryCount * stride
  const formatsOffset = packsOffset + packCount * PACK_INFO_SIZE
  if (formatsOffset + formatCount * FORMAT_INFO_SIZE > data.length) {
    throw corrupt(ctx, `index v2 declares ${entryCount} entries and ${packCount} packs but is only ${data.length} bytes (truncated?)`)
  }
  const formats: FormatInfo[] = []
  for (let i = 0; i < formatCount; i++) {
    const at = formatsOffset + i * FORMAT_INFO_SIZE
    formats.push({ compressionHeaderId: data.readUInt32BE(at), formatVersion: data.readUInt8(at + 4), encryptionKeyId: data.readUInt8(at + 5) })
  }
  // Pack names are decoded lazily: a compacted index may list many packs, a poller needs few.
  const packNames = new Map<number, string>()
  const packName = (index: number): string => {
    let name = packNames.get(index)
    if (name !== undefined) return name
    if (index >= packCount) throw corrupt(ctx, `index v2 entry refers to pack #${index} of ${packCount}`)
    const info = packsOffset + index * PACK_INFO_SIZE
    const length = data.readUInt8(info)
    const offset = data.readUInt32BE(info + 1)
    if (offset + length > data.length) throw corrupt(ctx, `index v2 pack name #${index} lies outside the blob`)
    name = data.toString('latin1', offset, offset + length)
    packNames.set(index, name)
    return name
  }

  const entryAt = (position: number): IndexEntry => {
    if (position < 0 || position >= entryCount) throw new RangeError(`entry ${position} of ${entryCount}`)
    const key = HEADER_SIZE + position * stride
    const e = key + keySize
    const packAndFlags = data.readUInt32BE(e + 4)
    let originalLength = data.readUIntBE(e + 8, 3)
    let packedLength = data.readUIntBE(e + 11, 3)
    let packIndex = data.readUInt16BE(e + 14)
    const formatIndex = entrySize > 16 ? data.readUInt8(e + 16) : 0
    if (entrySize > 17) packIndex |= data.readUInt8(e + 17) << 16
    if (entrySize > 18) {
      const high = data.readUInt8(e + 18)
      originalLength += (high >> 4) * 0x1000000
      packedLength += (high & 0xf) * 0x1000000
    }
    const format = formats[formatIndex]
    if (format === undefined) throw corrupt(ctx, `index v2 entry refers to format #${formatIndex} of ${formatCount}`)
    return {
      contentId: contentIdFromKey(data, key, keySize),
      timestamp: data.readUInt32BE(e) + baseTimestamp,
      deleted: (packAndFlags & 0x80000000) !== 0,
      packBlobId: packName(packIndex),
      packOffset: packAndFlags & 0x7fffffff,
      packedLength,
      originalLength,
      compressionHeaderId: format.compressionHeaderId,
      formatVersion: format.formatVersion,
      encryptionKeyId: format.encryptionKeyId,
    }
  }

  return {
    version: 2,
    entryCount,
    entryAt,
    entriesWithPrefix(prefix: string): IndexEntry[] {
      const [from, to] = prefixRange(data, HEADER_SIZE, stride, entryCount, prefix.charCodeAt(0))
      const result: IndexEntry[] = []
      for (let i = from; i < to; i++) result.push(entryAt(i))
      return result
    },
  }
}
