// Writer-made repositories shaped like the real ones kopia 0.23.1 wrote (test/kopia/real-repos.test.ts):
// a maintenance manifest replaced again and again (new ID + tombstone), contents rewritten by
// maintenance into newer packs (live ones, and deletion markers copied as deleted entries), an
// epoch marker with blobs in two epochs, and `xw` / `_log_…` / `kopia.blobcfg` /
// `kopia.maintenance` blobs beside the indexes. The expected figures come from the writer's own
// bookkeeping (its independent merge rule), not from the reader.
import { randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { KopiaRepository } from '../../src/kopia/repository.ts'
import { FsBlobStore } from '../../src/storage/fs-store.ts'
import { directoryTarget } from '../support/kopia-target.ts'
import { KopiaTestWriter } from '../support/kopia-writer.ts'

const password = 'real-shapes-password'
const uniqueId = randomBytes(32)

/** Index figures the writer expects: every index blob it wrote, their entries, distinct and live `m` contents. */
function writerIndexFigures(writer: KopiaTestWriter) {
  const entries = [...writer.indexBlobs.values()].flatMap((r) => r.entries)
  const manifest = entries.filter((e) => e.contentId.startsWith('m'))
  const ids = [...new Set(manifest.map((e) => e.contentId))]
  const live = ids.map((id) => writer.newestEntry(id)).filter((e) => !e.deleted)
  return {
    index: { blobs: writer.indexBlobs.size, entries: entries.length, manifestEntries: manifest.length },
    manifestContents: { ids: ids.length, live: live.length, packs: new Set(live.map((e) => e.packBlobId)).size },
  }
}

t.test('replaced manifests, rewrites into newer packs, deleted entries copied, two epochs, blobs to pass over', async (t) => {
  const target = await directoryTarget()
  t.teardown(() => target.cleanup())
  const writer = await KopiaTestWriter.create({ password, uniqueId, put: target.put, remove: target.remove })
  const maintenanceData = { owner: 'root@67b43830d574', quick: { enabled: true, interval: 3_600_000_000_000 } }
  // Like kopia: the global policy and the maintenance manifest first, each in a content of its own flush.
  const policy = writer.addManifest({ policyType: 'global', type: 'policy' }, { retention: { keepLatest: 10 } })
  let maintenance = writer.addManifest({ type: 'maintenance' }, maintenanceData)
  const contents = [writer.flushManifests()]
  await writer.flushIndex()
  const replaced: string[] = []
  const replace = async () => {
    writer.deleteManifest(maintenance)
    replaced.push(maintenance)
    maintenance = writer.addManifest({ type: 'maintenance' }, maintenanceData)
    contents.push(writer.flushManifests())
    await writer.flushIndex()
  }
  for (let i = 0; i < 3; i++) await replace()
  const snapshot = writer.addSnapshot({ username: 'jellyfin', hostname: 'media', path: '/data', startTime: '2026-08-19T11:02:51.617889672Z' })
  contents.push(writer.flushManifests())
  await writer.flushIndex()
  // Maintenance rewrites every content into a newer pack; the old entries stay where they were.
  writer.rewriteContents(contents.map((id) => writer.newestEntry(id)))
  await writer.flushIndex()
  await writer.advanceEpoch()
  await replace()
  await writer.writeRepositoryExtras({ logs: 3 })

  const names = await readdir(target.root)
  t.ok(names.includes('kopia.blobcfg.f') && names.includes('kopia.maintenance.f') && names.some((n) => /^xw\d+\.f$/.test(n)) && names.includes('xe1.f'), 'blobs beside the indexes, where kopia puts them')
  t.equal((await readdir(join(target.root, '_', 'log'))).length, 3, '`_log_…` blobs under _/log/ (shards 1,3)')

  const repository = await KopiaRepository.open(new FsBlobStore(target.root), password)
  const first = await repository.pollDetailed()
  t.same(first.sources.map((s) => [s.username, s.hostname, s.snapshots, s.newest.id]), [['jellyfin', 'media', 1, snapshot]])
  t.same(first.read, {
    ...writerIndexFigures(writer),
    manifests: { ids: 7, live: 3, deleted: 4, liveByType: { maintenance: 1, policy: 1, snapshot: 1 } },
    snapshots: { complete: 1, incomplete: 0, unreadable: 0, sources: 1 },
  }, 'the rewritten copies win (newer); xe/xw/_log/blobcfg/maintenance are passed over')
  t.equal(first.read.index.blobs, 7, 'seven index blobs: five flushes, one rewrite, one in epoch 1')
  const live = repository.manifests().filter((m) => !m.deleted)
  t.same(live.map((m) => m.id).sort(), [maintenance, policy, snapshot].sort())
  t.same(repository.manifests().filter((m) => m.deleted).map((m) => m.id).sort(), [...replaced].sort(), 'every replaced maintenance manifest is a tombstone')

  // Compaction then deletes every older content; a later rewrite copies one deletion marker too.
  const compacted = writer.compactManifests()
  await writer.flushIndex()
  const [copied] = writer.rewriteContents([writer.newestEntry(contents[0]!)])
  t.equal(copied?.deleted, true, 'the writer copied a deleted entry')
  await writer.flushIndex()
  const second = await repository.pollDetailed()
  t.same(second.sources, first.sources, 'the same snapshot after compaction')
  t.same(second.read, {
    ...writerIndexFigures(writer),
    manifests: { ids: 3, live: 3, deleted: 0, liveByType: { maintenance: 1, policy: 1, snapshot: 1 } },
    snapshots: { complete: 1, incomplete: 0, unreadable: 0, sources: 1 },
  }, 'compaction drops the tombstones')
  t.same(second.read.manifestContents, { ids: contents.length + 1, live: 1, packs: 1 }, `only the compacted content ${compacted.slice(0, 9)}… is live`)
})
