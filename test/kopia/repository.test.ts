import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { FsBlobStore } from '../../src/storage/fs-store.ts'
import { KopiaRepository, type KopiaSourceSnapshots } from '../../src/kopia/repository.ts'
import { FlatLayout } from '../../src/kopia/blob-layout.ts'
import { KopiaTestWriter, type WriterOptions } from '../support/kopia-writer.ts'
import { directoryTarget } from '../support/kopia-target.ts'

// One uniqueID for the repositories of this file: the scrypt derivation then runs once.
const uniqueId = randomBytes(32)
const password = 'correct horse battery staple'

async function repo(t: Test, options: Partial<WriterOptions> = {}) {
  const target = await directoryTarget()
  t.teardown(() => target.cleanup())
  const writer = await KopiaTestWriter.create({ password, uniqueId, put: target.put, remove: target.remove, ...options })
  return { writer, target, store: new FsBlobStore(target.root) }
}

const source = (s: KopiaSourceSnapshots) => `${s.username}@${s.hostname}:${s.path}`

t.test('end to end: several identities, deleted and incomplete snapshots, zstd/gzip/plain manifests', async (t) => {
  const { writer, store } = await repo(t)
  writer.addSnapshot({ username: 'jellyfin', hostname: 'media', path: '/data', startTime: '2026-03-01T10:00:00.5Z', endTime: '2026-03-01T10:05:00Z', sizeBytes: 100, files: 3, dirs: 1 })
  const newest = writer.addSnapshot({ username: 'jellyfin', hostname: 'media', path: '/data', startTime: '2026-03-01T10:00:00.500000001Z', endTime: '2026-03-01T10:07:00.25Z', sizeBytes: 200, files: 4, dirs: 2 })
  writer.addManifest({ type: 'policy', policyType: 'global' }, { retention: {} })
  writer.flushManifests({ compression: 0x1101 })
  await writer.flushIndex()
  const doomed = writer.addSnapshot({ username: 'jellyfin', hostname: 'media', path: '/data', startTime: '2026-03-02T00:00:00Z' })
  writer.addSnapshot({ username: 'jellyfin', hostname: 'media', path: '/data', startTime: '2026-03-03T00:00:00Z', incomplete: 'checkpoint' })
  const prowlarr = writer.addSnapshot({ username: 'prowlarr', hostname: 'media', path: '/config', startTime: '2026-02-01T00:00:00Z', sizeBytes: 7, files: 1, dirs: 1 })
  writer.addSnapshot({ username: 'sonarr', hostname: 'tv', path: '/config', startTime: '2026-02-05T00:00:00Z', incomplete: 'canceled' })
  writer.flushManifests({ compression: 0x1000 })
  writer.deleteManifest(doomed)
  writer.flushManifests()
  await writer.flushIndex()

  const repository = await KopiaRepository.open(store, password)
  t.equal(repository.formatVersion, 3)
  t.equal(repository.uniqueId, uniqueId.toString('hex'))
  t.equal(repository.location, store.location)
  t.match(repository.layout.description, /sharded \[1,3\]\/20/)
  const sources = await repository.poll()
  t.same(sources.map(source), ['jellyfin@media:/data', 'prowlarr@media:/config'], 'the only-incomplete source is not listed')
  t.same(sources[0], {
    username: 'jellyfin', hostname: 'media', path: '/data', snapshots: 2,
    newest: { id: newest, startTime: '2026-03-01T10:00:00.500000001Z', endTime: '2026-03-01T10:07:00.250000000Z', sizeBytes: 200, files: 4, dirs: 2 },
  }, 'a nanosecond decides; the deleted and the incomplete snapshot do not count')
  t.equal(sources[1]?.newest.id, prowlarr)
  t.equal(repository.stats.snapshotManifests, 5, 'live snapshot manifests incl. incomplete ones')
})

t.test('ChaCha20-Poly1305, 32-byte hashes, flat (object-store) layout with a key prefix', async (t) => {
  const { writer, store } = await repo(t, { encryption: 'CHACHA20-POLY1305-HMAC-SHA256', hash: 'HMAC-SHA256', layout: { kind: 'flat', keyPrefix: 'snapshot-' } })
  const id = writer.addSnapshot({ username: 'root', hostname: 'buildbox', path: '/srv', startTime: '2026-01-01T00:00:00Z' })
  writer.flushManifests({ compression: 0x1500 })
  await writer.flushIndex()
  await t.rejects(KopiaRepository.open(store, password), { code: 'not-a-repository' }, 'the prefix is part of every key: nothing to detect')
  const repository = await KopiaRepository.open(store, password, { layout: new FlatLayout(store, 'snapshot-') })
  const [only] = await repository.poll()
  t.equal(only?.newest.id, id)
  t.equal(only?.newest.startTime, '2026-01-01T00:00:00.000000000Z')
})

t.test('several epochs, single-epoch compactions, a range checkpoint, cleanup', async (t) => {
  const { writer, store, target } = await repo(t)
  const ids: string[] = []
  for (let epoch = 0; epoch < 10; epoch++) {
    for (let i = 0; i < 2; i++) {
      ids.push(writer.addSnapshot({ username: `app${i}`, hostname: 'ns', path: '/data', startTime: `2026-01-${String(epoch + 1).padStart(2, '0')}T0${i}:00:00Z` }))
      writer.flushManifests({ compression: 0x1101 })
      await writer.flushIndex()
    }
    await writer.advanceEpoch()
  }
  // epochs 0-5 in one range checkpoint (inputs removed), 6 and 7 compacted (7 left in place),
  // 8 only half compacted (an incomplete set must be ignored), 9 and 10 uncompacted.
  await writer.compactEpoch(0)
  await writer.rangeCheckpoint(0, 5, { cleanup: true })
  await writer.compactEpoch(6, { cleanup: true, parts: 2 })
  const superseded = [...writer.indexBlobs].filter(([, r]) => r.kind === 'xn' && r.epoch === 7).map(([id]) => id)
  await writer.compactEpoch(7)
  await writer.compactEpoch(8, { parts: 3, writeParts: 2 })
  writer.addSnapshot({ username: 'app0', hostname: 'ns', path: '/data', startTime: '2026-02-01T00:00:00Z', incomplete: 'checkpoint' })
  writer.flushManifests()
  await writer.flushIndex()
  t.equal(writer.writeEpoch, 10)
  // Epoch 7 is settled and compacted: its uncompacted blobs are superseded and never read.
  for (const id of superseded) await target.put(writer.keyOf(id), randomBytes(300))

  const repository = await KopiaRepository.open(store, password)
  const sources = await repository.poll()
  t.same(sources.map((s) => [source(s), s.snapshots, s.newest.startTime]), [
    ['app0@ns:/data', 10, '2026-01-10T00:00:00.000000000Z'],
    ['app1@ns:/data', 10, '2026-01-10T01:00:00.000000000Z'],
  ])
  t.equal(repository.stats.snapshotManifests, 21)
  t.equal(repository.stats.indexBlobsRead, 1 + 2 + 1 + 2 + 2 + 1, 'xr 0-5, xs 6 (2 parts), xs 7, xn 8 (x2), xn 9 (x2), xn 10')
})

t.test('manifest compaction: old contents are deleted in the index, duplicates merge', async (t) => {
  const { writer, store } = await repo(t)
  const keep = writer.addSnapshot({ username: 'a', hostname: 'h', path: '/p', startTime: '2026-01-01T00:00:00Z' })
  writer.flushManifests()
  const gone = writer.addSnapshot({ username: 'a', hostname: 'h', path: '/p', startTime: '2026-01-02T00:00:00Z' })
  writer.flushManifests()
  await writer.flushIndex()
  writer.deleteManifest(gone)
  writer.flushManifests()
  writer.compactManifests({ compression: 0x1101 })
  await writer.flushIndex()
  const repository = await KopiaRepository.open(store, password)
  const [only] = await repository.poll()
  t.equal(only?.snapshots, 1)
  t.equal(only?.newest.id, keep)
  t.equal(repository.stats.contentsRead, 1, 'only the compacted content is live')
})

t.test('format version 1: legacy n indexes, index v1, [3,3] shards, compaction logs', async (t) => {
  const { writer, store, target } = await repo(t, { version: 1 })
  const first = writer.addSnapshot({ username: 'u', hostname: 'h', path: '/a', startTime: '2025-12-01T00:00:00Z' })
  writer.flushManifests()
  await writer.flushIndex()
  writer.addSnapshot({ username: 'u', hostname: 'h', path: '/b', startTime: '2025-12-02T00:00:00Z' })
  writer.flushManifests()
  const inputs = [...writer.indexBlobs.keys(), await writer.flushIndex()]
  await writer.compactLegacy()
  // Inputs of a valid compaction log are not read: make them unreadable to prove it.
  for (const id of inputs) await target.put(writer.keyOf(id), Buffer.from('superseded'))
  writer.addSnapshot({ username: 'u', hostname: 'h', path: '/a', startTime: '2025-12-03T00:00:00Z', incomplete: 'limit reached' })
  writer.flushManifests()
  await writer.flushIndex()

  const repository = await KopiaRepository.open(store, password)
  t.equal(repository.formatVersion, 1)
  t.match(repository.layout.description, /\[3,3\]/)
  const sources = await repository.poll()
  t.same(sources.map((s) => [s.path, s.snapshots]), [['/a', 1], ['/b', 1]])
  t.equal(sources[0]?.newest.id, first)

  await writer.putBlob('n00000000000000000000000000000000-repository_unreadable_by_this_kopia_version_upgrade_required', Buffer.alloc(0))
  await t.rejects(repository.poll(), { code: 'upgrading', message: /upgraded past format version 1/ })
})
