// Kopia's compressed contents: the index entry names a compressor ID, and the decrypted payload
// repeats it as a 4-byte big-endian header before the compressed stream. Decoding runs on the
// zlib thread pool (async), with an output cap so that a corrupt or hostile stream cannot
// exhaust memory.
import { promisify } from 'node:util'
import { createGunzip, gunzip, inflateRaw, zstdDecompress } from 'node:zlib'
import { errorMessage } from '../errors.ts'
import { type BlobContext, corrupt, unsupported } from './errors.ts'

const gunzipAsync = promisify(gunzip)
const inflateRawAsync = promisify(inflateRaw)
const zstdDecompressAsync = promisify(zstdDecompress)

export const HEADER_SIZE = 4
/** Larger than any content kopia writes (index v2 caps lengths at 2^28). */
export const MAX_DECOMPRESSED_BYTES = 1 << 30

type Family = 'gzip' | 'zstd' | 's2' | 'pgzip' | 'lz4' | 'deflate'

const FAMILIES: ReadonlyMap<number, Family> = new Map<number, Family>([
  [0x1000, 'gzip'], [0x1001, 'gzip'], [0x1002, 'gzip'],
  [0x1100, 'zstd'], [0x1101, 'zstd'], [0x1102, 'zstd'], [0x1103, 'zstd'],
  [0x1200, 's2'], [0x1201, 's2'], [0x1202, 's2'], [0x1203, 's2'],
  [0x1300, 'pgzip'], [0x1301, 'pgzip'], [0x1302, 'pgzip'],
  [0x1400, 'lz4'],
  [0x1500, 'deflate'], [0x1501, 'deflate'], [0x1502, 'deflate'],
])

/**
 * Output chunk size of the async decoders: each chunk is a round trip between the zlib thread and
 * the event loop, and the 16 KiB default means thousands of them for one compacted manifest content.
 */
function chunkSizeFor(input: Buffer): number {
  return Math.min(16 << 20, Math.max(64 << 10, input.length * 4))
}

function hex(id: number): string {
  return `0x${id.toString(16).padStart(4, '0')}`
}

/** Human name of a compressor ID, for messages. */
export function compressionName(id: number): string {
  const family = FAMILIES.get(id)
  return family === undefined ? `unknown compressor ${hex(id)}` : `${family} (${hex(id)})`
}

/**
 * The decompressed payload of a content whose index entry says `headerId` (0 = stored as is).
 * s2 and lz4 have no decoder here: kopia never uses them for the metadata this reader needs
 * (manifests are written with zstd-fastest or uncompressed), and lz4 reading was dropped by kopia
 * itself in v0.23.
 */
export async function decompressContent(headerId: number, payload: Buffer, ctx: BlobContext, maxOutputLength = MAX_DECOMPRESSED_BYTES): Promise<Buffer> {
  if (headerId === 0) return payload
  const family = FAMILIES.get(headerId)
  if (family === undefined || family === 's2' || family === 'lz4') {
    throw unsupported(ctx, `content is compressed with ${compressionName(headerId)}, which this reader cannot decompress`)
  }
  if (payload.length < HEADER_SIZE) throw corrupt(ctx, `compressed content is ${payload.length} bytes, shorter than its header`)
  const stored = payload.readUInt32BE(0)
  if (stored !== headerId) throw corrupt(ctx, `compression header ${hex(stored)} does not match the index entry's ${hex(headerId)}`)
  const stream = payload.subarray(HEADER_SIZE)
  try {
    const options = { maxOutputLength, chunkSize: chunkSizeFor(stream) }
    if (family === 'zstd') return await zstdDecompressAsync(stream, options)
    if (family === 'deflate') return await inflateRawAsync(stream, options)
    return await gunzipAsync(stream, options) // gzip and pgzip write ordinary gzip streams
  } catch (error) {
    throw corrupt(ctx, `cannot decompress ${compressionName(headerId)} content: ${errorMessage(error)}`, error)
  }
}

/** Output chunk size of the streaming gunzip of manifest contents: each chunk is parsed while the next inflates. */
export const MANIFEST_CHUNK_BYTES = 1 << 20

/**
 * Gunzips a manifest content (a gzip stream, possibly of several members, inside the content) and
 * hands the output to `onChunk` as it inflates, in chunks of up to 1 MiB, so that the whole
 * decompressed content never needs to be one buffer; a chunk may be kept by `onChunk`. Throws
 * KopiaError `corrupt` ("manifest content is not a gzip stream: ...") when the stream is invalid or
 * truncated or inflates past `maxOutputLength` bytes; an error thrown by `onChunk` stops the
 * inflation and is thrown as is.
 */
export async function gunzipManifestChunks(data: Buffer, ctx: BlobContext, onChunk: (chunk: Buffer) => void, maxOutputLength = MAX_DECOMPRESSED_BYTES): Promise<void> {
  const inflater = createGunzip({ chunkSize: MANIFEST_CHUNK_BYTES })
  const chunks: AsyncIterator<Buffer> = inflater[Symbol.asyncIterator]()
  inflater.end(data)
  let total = 0
  try {
    for (;;) {
      let next: IteratorResult<Buffer>
      try {
        next = await chunks.next()
      } catch (error) {
        throw corrupt(ctx, `manifest content is not a gzip stream: ${errorMessage(error)}`, error)
      }
      if (next.done === true) return
      total += next.value.length
      if (total > maxOutputLength) throw corrupt(ctx, `manifest content is not a gzip stream: it inflates to more than ${maxOutputLength} bytes`)
      onChunk(next.value)
    }
  } finally {
    inflater.destroy()
  }
}
