// Index format v1 (format-version-1 repositories): 8-byte header, sorted (key ‖ 20-byte value)
// records, then the pack names. A value holds a 48-bit timestamp, the format version, the pack
// name's length and absolute offset, deleted flag + pack offset, and the packed length; v1 has no
// compression and no original length (kopia derives it from the encryptor's fixed overhead).
import { CONTENT_OVERHEAD } from './content-crypto.ts'
import { type BlobContext, corrupt } from './errors.ts'
import { contentIdFromKey, type IndexEntry, type ParsedIndex, prefixRange } from './index-entry.ts'

const HEADER_SIZE = 8
const VALUE_SIZE = 20
/** Written as the key size of an index with no entries (compaction can remove everything). */
const EMPTY_KEY_SIZE = 255

/**
 * A view over a decrypted v1 index blob: entries are decoded when looked up, not copied (a pack name
 * outside the blob throws then). Throws KopiaError `corrupt` when the header is invalid or the declared
 * entries do not fit in `data`.
 */
export function openIndexV1(data: Buffer, ctx: BlobContext): ParsedIndex {
  if (data.length < HEADER_SIZE) throw corrupt(ctx, `index v1 is ${data.length} bytes, shorter than its header`)
  if (data[0] !== 1) throw corrupt(ctx, `index version byte is ${data[0]}, not 1`)
  const keySize = data.readUInt8(1)
  const valueSize = data.readUInt16BE(2)
  const entryCount = data.readUInt32BE(4)
  if (keySize <= 1) throw corrupt(ctx, `index v1 header is invalid (key size ${keySize})`)
  if (keySize === EMPTY_KEY_SIZE && entryCount === 0) return emptyIndex()
  if (valueSize !== VALUE_SIZE) throw corrupt(ctx, `index v1 value size is ${valueSize}, not ${VALUE_SIZE}`)
  const stride = keySize + valueSize
  if (HEADER_SIZE + entryCount * stride > data.length) {
    throw corrupt(ctx, `index v1 declares ${entryCount} entries but is only ${data.length} bytes (truncated?)`)
  }

  const packNames = new Map<number, string>()
  const packName = (offset: number, length: number): string => {
    let name = packNames.get(offset)
    if (name !== undefined) return name
    if (offset + length > data.length) throw corrupt(ctx, `index v1 pack name at ${offset} lies outside the blob`)
    name = data.toString('latin1', offset, offset + length)
    packNames.set(offset, name)
    return name
  }

  const entryAt = (position: number): IndexEntry => {
    if (position < 0 || position >= entryCount) throw new RangeError(`entry ${position} of ${entryCount}`)
    const key = HEADER_SIZE + position * stride
    const v = key + keySize
    const packAndFlags = data.readUInt32BE(v + 12)
    const packedLength = data.readUInt32BE(v + 16)
    return {
      contentId: contentIdFromKey(data, key, keySize),
      timestamp: data.readUIntBE(v, 6),
      deleted: (packAndFlags & 0x80000000) !== 0,
      packBlobId: packName(data.readUInt32BE(v + 8), data.readUInt8(v + 7)),
      packOffset: packAndFlags & 0x7fffffff,
      packedLength,
      originalLength: Math.max(0, packedLength - CONTENT_OVERHEAD),
      compressionHeaderId: 0,
      formatVersion: data.readUInt8(v + 6),
      encryptionKeyId: 0,
    }
  }

  return {
    version: 1,
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

function emptyIndex(): ParsedIndex {
  return {
    version: 1,
    entryCount: 0,
    entryAt: (position: number) => { throw new RangeError(`entry ${position} of 0`) },
    entriesWithPrefix: () => [],
  }
}
