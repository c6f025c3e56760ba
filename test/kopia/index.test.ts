import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { parseIndex } from '../../src/kopia/index-blob.ts'
import { contentIdFromKey, supersedes, type IndexEntry } from '../../src/kopia/index-entry.ts'
import { buildIndexV1, buildIndexV2, indexKey, type BuiltEntry } from '../support/kopia-index-builder.ts'
import vectors from '../fixtures/kopia/vectors.json' with { type: 'json' }

const syntinel = new URL('../fixtures/kopia/real-syntinel/', import.meta.url)
const ctx = (blobId: string) => ({ location: 's3://bucket/snapshot-', blobId })

function realIndexes(): Map<string, Buffer> {
  const byName = new Map<string, Buffer>()
  for (const commit of readdirSync(syntinel)) {
    const dir = new URL(`${commit}/indexes/`, syntinel)
    for (const file of readdirSync(dir)) byName.set(file.replace(/\.sndx$/, ''), readFileSync(new URL(file, dir)))
  }
  return byName
}

t.test('the 22 distinct real decrypted index blobs (kopia 0.19, index v2)', async (t) => {
  const blobs = realIndexes()
  t.equal(blobs.size, 22)
  let entries = 0
  let manifests = 0
  let directories = 0
  const packs = new Set<string>()
  for (const [blobId, bytes] of blobs) {
    const index = parseIndex(bytes, ctx(blobId))
    t.equal(index.version, 2)
    for (let i = 0; i < index.entryCount; i++) {
      const e = index.entryAt(i)
      packs.add(e.packBlobId)
      t.match(e.packBlobId, /^q[0-9a-f]{32}-s[0-9a-f]{19}$/)
      t.equal(e.compressionHeaderId, 0)
      t.equal(e.formatVersion, 3)
      t.equal(e.encryptionKeyId, 0)
      t.equal(e.packedLength, e.originalLength + 28, 'uncompressed: packed = original + AEAD overhead')
      if (i > 0) t.ok(Buffer.compare(indexKey(index.entryAt(i - 1).contentId), indexKey(e.contentId)) < 0, 'sorted by key bytes')
    }
    const m = index.entriesWithPrefix('m')
    const k = index.entriesWithPrefix('k')
    t.equal(m.length + k.length, index.entryCount, `${blobId}: every entry is m or k`)
    t.ok(m.every((e) => e.contentId.startsWith('m')) && k.every((e) => e.contentId.startsWith('k')))
    t.same(index.entriesWithPrefix('x'), [], 'no x contents')
    entries += index.entryCount
    manifests += m.length
    directories += k.length
  }
  t.equal(entries, 27)
  t.equal(manifests, 22)
  t.equal(directories, 5)
  t.equal(packs.size, 22)
})

t.test('the decoded fields of the vector blobs', async (t) => {
  for (const c of vectors.realIndexBlobs.cases) {
    const index = parseIndex(Buffer.from(c.plaintextHex, 'hex'), ctx(c.blobID))
    t.equal(index.entryCount, c.expected.entryCount)
    const decoded = Array.from({ length: index.entryCount }, (_, i) => index.entryAt(i))
    t.same(decoded, c.expected.entries.map((e) => ({
      contentId: e.contentID, timestamp: e.timestamp, deleted: e.deleted, packBlobId: e.packBlobID, packOffset: e.packOffset,
      packedLength: e.packedLength, originalLength: e.originalLength, compressionHeaderId: e.compressionHeaderID,
      formatVersion: e.formatVersion, encryptionKeyId: e.encryptionKeyID,
    })))
  }
})

t.test('content ID <-> index key bytes', async (t) => {
  for (const c of vectors.contentIds.indexKeys) {
    t.equal(indexKey(c.id).toString('hex'), c.indexKeyHex)
    const key = Buffer.from(c.indexKeyHex, 'hex')
    t.equal(contentIdFromKey(key, 0, key.length), c.id)
  }
})

const entry = (over: Partial<BuiltEntry>): BuiltEntry => ({
  contentId: `m${'11'.repeat(16)}`, timestamp: 1_700_000_000, deleted: false, packBlobId: `q${'aa'.repeat(16)}-s0123456789abcdef132`,
  packOffset: 32, packedLength: 500, originalLength: 472, compressionHeaderId: 0, formatVersion: 2, ...over,
})

t.test('v2 entries of every size, wide lengths and formats; v1 round trip', async (t) => {
  const built: [BuiltEntry, BuiltEntry, BuiltEntry, BuiltEntry, BuiltEntry] = [
    entry({}),
    entry({ contentId: `m${'22'.repeat(16)}`, deleted: true, packOffset: (1 << 30) - 1 }),
    entry({ contentId: `m${'33'.repeat(16)}`, packedLength: 0x2345678, originalLength: 0x3456789, compressionHeaderId: 0x1101 }),
    entry({ contentId: 'ab'.repeat(16), packBlobId: `p${'bb'.repeat(16)}-s1` }),
    entry({ contentId: `k${'44'.repeat(16)}` }),
  ]
  const asRead = (e: BuiltEntry): IndexEntry => ({ ...e, encryptionKeyId: 0 })
  for (const entrySize of [19] as const) {
    const index = parseIndex(buildIndexV2(built, { entrySize }), ctx('xn0_x'))
    t.same(index.entriesWithPrefix('m'), [built[0], built[1], built[2]].map(asRead), `entry size ${entrySize}`)
    t.same(index.entryAt(0), asRead(built[3]), 'unprefixed IDs sort first')
  }
  const narrow = [built[0], built[1], built[3], built[4]]
  for (const entrySize of [16, 17, 18] as const) {
    const index = parseIndex(buildIndexV2(narrow, { entrySize }), ctx('xn0_x'))
    t.same(index.entriesWithPrefix('m'), [built[0], built[1]].map(asRead), `entry size ${entrySize}`)
    t.same(index.entriesWithPrefix('k'), [asRead(built[4])])
  }
  const v1 = parseIndex(buildIndexV1(narrow), ctx('n0'))
  t.equal(v1.version, 1)
  t.same(v1.entriesWithPrefix('m'), [built[0], built[1]].map((e) => ({ ...asRead(e), originalLength: e.packedLength - 28 })), 'v1: original = packed - 28')
  t.equal(parseIndex(buildIndexV1([]), ctx('n0')).entryCount, 0, 'empty v1 index written by compaction')
})

t.test('merge rule: newer wins, then live over deleted, then greater pack', async (t) => {
  const a = { ...entry({}), encryptionKeyId: 0 }
  t.ok(supersedes({ ...a, timestamp: a.timestamp + 1, deleted: true }, a))
  t.ok(supersedes(a, { ...a, deleted: true }))
  t.notOk(supersedes({ ...a, deleted: true }, a))
  t.ok(supersedes({ ...a, packBlobId: 'qz' }, { ...a, packBlobId: 'qa' }))
})

t.test('garbage, truncated and inconsistent index bytes are corrupt, never a crash', async (t) => {
  const good = buildIndexV2([entry({}), entry({ contentId: `m${'22'.repeat(16)}` })])
  const bad: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['unknown version', Buffer.from([7, 17, 0, 16])],
    ['random bytes', Buffer.from('this is not an index blob at all, just text')],
    ['truncated header', good.subarray(0, 10)],
    ['truncated entries', good.subarray(0, 40)],
    ['entry size 20', Buffer.from(good).fill(0, 2, 3).fill(20, 3, 4)],
    ['key size 1', Buffer.from(good).fill(1, 1, 2)],
  ]
  for (const [what, bytes] of bad) t.throws(() => parseIndex(bytes, ctx('xn0_bad')), { name: 'KopiaError', code: 'corrupt', message: /blob xn0_bad: / }, what)
  const badPack = Buffer.from(good)
  badPack.writeUInt16BE(9, 17 + 17 + 14) // first entry points at pack #9 of 1
  t.throws(() => parseIndex(badPack, ctx('xn0_bad')).entriesWithPrefix('m'), { code: 'corrupt', message: /pack #9 of 1/ })
  const v1 = buildIndexV1([entry({})])
  t.throws(() => parseIndex(v1.subarray(0, 20), ctx('n1')), { code: 'corrupt', message: /truncated/ })
  const v1BadName = Buffer.from(v1)
  v1BadName.writeUInt32BE(5000, 8 + 17 + 8)
  t.throws(() => parseIndex(v1BadName, ctx('n1')).entryAt(0), { code: 'corrupt', message: /outside the blob/ })
})

t.test('real index files are exactly header + entries + tables + names', async (t) => {
  for (const commit of readdirSync(syntinel)) {
    const dir = new URL(`${commit}/indexes/`, syntinel)
    for (const file of readdirSync(dir)) {
      const bytes = readFileSync(new URL(file, dir))
      const index = parseIndex(bytes, ctx(file))
      const names = new Set(Array.from({ length: index.entryCount }, (_, i) => index.entryAt(i).packBlobId))
      const expected = 17 + index.entryCount * (bytes[1]! + bytes.readUInt16BE(2)) + names.size * 5 + bytes[12]! * 6 + [...names].join('').length
      t.equal(statSync(new URL(file, dir)).size, expected, file)
    }
  }
})
