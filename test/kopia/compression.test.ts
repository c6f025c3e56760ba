import t from 'tap'
import { randomBytes } from 'node:crypto'
import { deflateRawSync, gzipSync, zstdCompressSync } from 'node:zlib'
import { compressionName, manifestChunks, MANIFEST_CHUNK_BYTES } from '../../src/kopia/compression.ts'
import { compareInstants, formatRfc3339Nano, parseRfc3339 } from '../../src/rfc3339.ts'
import vectors from '../fixtures/kopia/vectors.json' with { type: 'json' }

const ctx = { location: '/repo/', blobId: 'q0123-s1' }
const payload = Buffer.from('{"entries":[]}'.repeat(50))
const header = (id: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(id); return b }

t.test('the 4-byte header examples of the document', async (t) => {
  for (const [id, hex] of Object.entries(vectors.compressionHeaderIds.headerExamplesHex)) t.equal(header(Number(id)).toString('hex'), hex)
})

t.test('every decodable family round-trips, header checked', async (t) => {
  const gzipped = gzipSync(payload)
  const streams: [number, Buffer][] = [
    [0x1000, gzipSync(gzipped)], [0x1002, gzipSync(gzipped, { level: 9 })],
    [0x1100, zstdCompressSync(gzipped)], [0x1101, zstdCompressSync(gzipped)], [0x1103, zstdCompressSync(gzipped)],
    [0x1300, gzipSync(gzipped)], [0x1301, gzipSync(gzipped)],
    [0x1500, deflateRawSync(gzipped)], [0x1502, deflateRawSync(gzipped)],
  ]
  for (const [id, stream] of streams) t.same(Buffer.concat(await manifestOf(id, Buffer.concat([header(id), stream]))), payload, compressionName(id))
  t.same(Buffer.concat(await manifestOf(0, gzipped)), payload, '0 = stored as is')
})

t.test('no decoder, wrong header, garbage, bombs: clear errors', async (t) => {
  const gzipped = gzipSync(payload)
  await t.rejects(manifestOf(0x1200, Buffer.concat([header(0x1200), gzipped])), { code: 'unsupported', message: /q0123-s1: content is compressed with s2 \(0x1200\)/ })
  await t.rejects(manifestOf(0x1400, Buffer.concat([header(0x1400), gzipped])), { code: 'unsupported', message: /lz4 \(0x1400\)/ })
  await t.rejects(manifestOf(0x7777, Buffer.concat([header(0x7777), gzipped])), { code: 'unsupported', message: /unknown compressor 0x7777/ })
  await t.rejects(manifestOf(0x1101, Buffer.concat([header(0x1100), zstdCompressSync(gzipped)])), { code: 'corrupt', message: /header 0x1100 does not match the index entry's 0x1101/ })
  await t.rejects(manifestOf(0x1101, header(0x1101).subarray(0, 2)), { code: 'corrupt', message: /compressed content is 2 bytes, shorter than its header/ })
  await t.rejects(manifestOf(0x1101, Buffer.concat([header(0x1101), Buffer.from('not zstd at all')])), { code: 'corrupt', message: /q0123-s1: cannot decompress zstd \(0x1101\) content: / })
  await t.rejects(manifestOf(0x1000, Buffer.concat([header(0x1000), gzipSync(gzipped).subarray(0, 20)])), { code: 'corrupt' }, 'truncated gzip')
  const bomb = Buffer.concat([header(0x1100), zstdCompressSync(gzipSync(randomBytes(4 << 20)))])
  await t.rejects(manifestOf(0x1100, bomb, 1 << 20), { code: 'corrupt', message: /cannot decompress zstd \(0x1100\) content: it decompresses to more than 1048576 bytes/ }, 'output cap of the decompression')
})

/** Every chunk manifestChunks hands over, in order, for a payload compressed as `headerId` says. */
async function manifestOf(headerId: number, payload: Buffer, maxOutputLength?: number): Promise<Buffer[]> {
  const chunks: Buffer[] = []
  await manifestChunks(headerId, payload, ctx, (chunk) => { chunks.push(chunk) }, maxOutputLength)
  return chunks
}
const gunzipChunks = (data: Buffer, maxOutputLength?: number) => manifestOf(0, data, maxOutputLength)

t.test('manifest gunzip: streamed in chunks, multi-member, errors', async (t) => {
  await t.rejects(gunzipChunks(Buffer.from('{}')), { code: 'corrupt', message: /q0123-s1: manifest content is not a gzip stream/ })
  await t.rejects(gunzipChunks(Buffer.alloc(0)), { code: 'corrupt', message: /not a gzip stream/ }, 'empty')
  t.same(Buffer.concat(await gunzipChunks(Buffer.concat([gzipSync(Buffer.from('ab')), gzipSync(Buffer.from('cd'))]))), Buffer.from('abcd'), 'multi-member gzip, as Go reads it')
  const big = Buffer.alloc(3 * MANIFEST_CHUNK_BYTES + 12345, 'manifest ')
  const chunks = await gunzipChunks(gzipSync(big))
  t.ok(chunks.length >= 4 && chunks.every((c) => c.length <= MANIFEST_CHUNK_BYTES), `${chunks.length} chunks of at most ${MANIFEST_CHUNK_BYTES} bytes, not one buffer`)
  t.same(Buffer.concat(chunks), big, 'chunks concatenate to the content')
  const gzipped = gzipSync(big)
  await t.rejects(gunzipChunks(gzipped.subarray(0, gzipped.length - 10)), { code: 'corrupt', message: /not a gzip stream/ }, 'truncated')
  await t.rejects(gunzipChunks(gzipSync(big), 2 * MANIFEST_CHUNK_BYTES), { code: 'corrupt', message: new RegExp(`inflates to more than ${2 * MANIFEST_CHUNK_BYTES} bytes`) }, 'output cap')
  const stop = new Error('consumer failed')
  let calls = 0
  await t.rejects(manifestChunks(0x1101, Buffer.concat([header(0x1101), zstdCompressSync(gzipSync(big))]), ctx, () => { calls++; throw stop }), stop, "the consumer's error as is")
  t.equal(calls, 1, 'and no chunk after it')
})

t.test('manifest contents streamed through the content compression, then gunzip', async (t) => {
  const manifest = Buffer.from(`{"entries":[${'{"id":"x"},'.repeat(100_000)}{"id":"y"}]}`)
  const gzipped = gzipSync(manifest)
  const streams: [number, Buffer][] = [[0x1000, gzipSync(gzipped)], [0x1101, zstdCompressSync(gzipped)], [0x1301, gzipSync(gzipped)], [0x1500, deflateRawSync(gzipped)]]
  for (const [id, stream] of streams) {
    const chunks = await manifestOf(id, Buffer.concat([header(id), stream]))
    t.ok(chunks.length > 1 && chunks.every((c) => c.length <= MANIFEST_CHUNK_BYTES), `${compressionName(id)}: ${chunks.length} chunks`)
    t.same(Buffer.concat(chunks), manifest, `${compressionName(id)}: the manifest content`)
  }
  const zstd = zstdCompressSync(gzipped)
  await t.rejects(manifestOf(0x1101, Buffer.concat([header(0x1101), zstd.subarray(0, zstd.length >> 1)])), { code: 'corrupt', message: /cannot decompress zstd \(0x1101\) content: unexpected end of file/ }, 'truncated zstd: the decompression fails, not the gunzip after it')
  await t.rejects(manifestOf(0x1101, Buffer.concat([header(0x1101), zstdCompressSync(manifest)])), { code: 'corrupt', message: /: manifest content is not a gzip stream: / }, 'decompresses, but not to gzip')
})

t.test('RFC 3339 with nanoseconds: trimmed fractions, offsets, years outside 1970-9999', async (t) => {
  const a = parseRfc3339('2023-03-16T20:46:55.76843Z')
  const b = parseRfc3339('2023-03-16T20:46:55.768430001Z')
  t.same(a, { seconds: 1678999615, nanos: 768430000 })
  t.ok(a && b && compareInstants(a, b) < 0, 'trimmed fraction compares by value, not by text')
  t.equal(formatRfc3339Nano(a!), '2023-03-16T20:46:55.768430000Z')
  t.same(parseRfc3339('2023-03-16T22:46:55.7+02:00'), { seconds: 1678999615, nanos: 700000000 })
  t.equal(formatRfc3339Nano(parseRfc3339('1754-08-30T22:43:41.128654848Z')!), '1754-08-30T22:43:41.128654848Z')
  t.equal(formatRfc3339Nano(parseRfc3339('0001-01-01T00:00:00Z')!), '0001-01-01T00:00:00.000000000Z', "Go's zero time")
  for (const bad of ['2023-02-30T00:00:00Z', '2023-03-16 20:46:55Z', '2023-03-16T20:46:55', '2023-03-16T20:46:55.1234567891Z', '']) t.equal(parseRfc3339(bad), null, bad)
})
