// What a poll read, on writer-made repositories: the counts per layer, the one-line description,
// and the kopia source's kopia-no-backups diagnostic (only when no PVC gets a backup: no complete
// snapshot, or only sources that no identity pattern maps).
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { kopiaSource } from '../../src/catalog/kopia-source.ts'
import { parseConfig } from '../../src/config/load.ts'
import type { KopiaSourceConfig } from '../../src/config/schema.ts'
import { describeRead } from '../../src/kopia/read-summary.ts'
import { KopiaRepository } from '../../src/kopia/repository.ts'
import { FsBlobStore } from '../../src/storage/fs-store.ts'
import { directoryTarget } from '../support/kopia-target.ts'
import { KopiaTestWriter } from '../support/kopia-writer.ts'

const password = 'read-summary-password'
// One uniqueID for every repository here: scrypt runs once.
const uniqueId = randomBytes(32)
const never = new AbortController().signal
const dir = await mkdtemp(join(tmpdir(), 'kopia-read-summary-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
await writeFile(join(dir, 'password'), password)

async function repo(t: Test) {
  const target = await directoryTarget()
  t.teardown(() => target.cleanup())
  const writer = await KopiaTestWriter.create({ password, uniqueId, put: target.put, remove: target.remove })
  return { writer, root: target.root }
}

function source(root: string, identity = ''): ReturnType<typeof kopiaSource> {
  const config = parseConfig(`catalog: {sources: [{name: nas, type: kopia, filesystem: {path: "${root}"}, passwordFile: "${join(dir, 'password')}"${identity}}]}`).catalog.sources[0]
  if (config?.type !== 'kopia') throw new Error('not a kopia source')
  return kopiaSource(config as KopiaSourceConfig)
}

t.test('counts per layer: index entries of every prefix; a deleted manifest content takes its manifests with it', async (t) => {
  const { writer, root } = await repo(t)
  writer.addManifest({ type: 'policy', policyType: 'global' }, {})
  const gone = writer.addSnapshot({ username: 'a', hostname: 'ns', path: '/data', startTime: '2026-01-01T00:00:00Z' })
  const first = writer.flushManifests()
  writer.writeContent('k', Buffer.from('{"stream":"kopia:directory","entries":[]}'))
  await writer.flushIndex()
  writer.deleteManifest(gone)
  writer.flushManifests()
  writer.deleteContent(first)
  await writer.flushIndex()

  const repository = await KopiaRepository.open(new FsBlobStore(root), password)
  const { sources, read } = await repository.pollDetailed()
  t.same(sources, [])
  t.same(read, {
    index: { blobs: 2, entries: 4, manifestEntries: 3 },
    manifestContents: { ids: 2, live: 1, packs: 1 },
    manifests: { ids: 1, live: 0, deleted: 1, liveByType: {} },
    snapshots: { complete: 0, incomplete: 0, unreadable: 0, sources: 0 },
  }, 'the `k` entry counts as an index entry only; only the tombstone\'s content is live')
  t.same(repository.manifests().map((m) => [m.id, m.deleted]), [[gone, true]])
})

t.test('counts per layer: live manifests by type, incomplete and unreadable snapshots', async (t) => {
  const { writer, root } = await repo(t)
  const policy = writer.addManifest({ type: 'policy', policyType: 'global' }, {})
  const gone = writer.addSnapshot({ username: 'a', hostname: 'ns', path: '/data', startTime: '2026-01-01T00:00:00Z' })
  writer.addSnapshot({ username: 'a', hostname: 'ns', path: '/data', startTime: '2026-01-02T00:00:00Z' })
  writer.addSnapshot({ username: 'b', hostname: 'ns', path: '/data', startTime: '2026-01-03T00:00:00Z', incomplete: 'checkpoint' })
  writer.addManifest({ type: 'snapshot', username: 'c', hostname: 'ns', path: '/data' }, { startTime: 'yesterday', endTime: 'today' })
  writer.flushManifests()
  writer.deleteManifest(gone)
  writer.flushManifests()
  await writer.flushIndex()

  const repository = await KopiaRepository.open(new FsBlobStore(root), password)
  const { read } = await repository.pollDetailed()
  t.same(read, {
    index: { blobs: 1, entries: 2, manifestEntries: 2 },
    manifestContents: { ids: 2, live: 2, packs: 1 },
    manifests: { ids: 5, live: 4, deleted: 1, liveByType: { policy: 1, snapshot: 3 } },
    snapshots: { complete: 1, incomplete: 1, unreadable: 1, sources: 1 },
  })
  t.equal(describeRead(read), '1 index blob (2 entries, 2 manifest entries); 2 manifest contents, 2 live in 1 pack; 5 manifests: 4 live (policy 1, snapshot 3), 1 deleted; 1 complete snapshot (1 incomplete, 1 unreadable) from 1 source')
  const view = repository.manifests()
  t.same(view.find((m) => m.id === policy)?.labels, { type: 'policy', policyType: 'global' }, 'labels of a non-snapshot manifest')
  t.ok(view.filter((m) => m.type === 'snapshot').every((m) => m.labels === null), 'snapshot manifests keep their source, not a labels object')
  t.same(view.find((m) => m.id === gone), { id: gone, modified: view.find((m) => m.id === gone)?.modified, deleted: true, type: '', labels: null })
})

t.test('an empty repository: nothing read, described as such', async (t) => {
  const { root } = await repo(t)
  const repository = await KopiaRepository.open(new FsBlobStore(root), password)
  const { read } = await repository.pollDetailed()
  t.equal(describeRead(read), '0 index blobs (0 entries, 0 manifest entries); 0 manifest contents, 0 live in 0 packs; 0 manifests: 0 live, 0 deleted; 0 complete snapshots (0 incomplete) from 0 sources')
  const found = await source(root).poll(never)
  t.match(found.diagnostics, [{ code: 'kopia-no-backups', message: /it holds no complete snapshot; read 0 index blobs/ }])
})

t.test('kopia source: no diagnostic when some PVC has a backup', async (t) => {
  const { writer, root } = await repo(t)
  writer.addSnapshot({ username: 'jellyfin', hostname: 'media', path: '/data', startTime: '2026-01-01T00:00:00Z' })
  writer.addSnapshot({ username: 'Root', hostname: 'laptop', path: '/home', startTime: '2026-01-01T00:00:00Z' })
  writer.flushManifests()
  await writer.flushIndex()
  const found = await source(root).poll(never)
  t.same(found.entries.map((e) => [e.namespace, e.pvc, e.snapshots]), [['media', 'jellyfin', 1]])
  t.same(found.diagnostics, [], 'a foreign source beside mapped ones is not a problem')
})

t.test('kopia source: only incomplete snapshots, or only sources no identity maps', async (t) => {
  const { writer, root } = await repo(t)
  writer.addSnapshot({ username: 'jellyfin', hostname: 'media', path: '/data', startTime: '2026-01-01T00:00:00Z', incomplete: 'canceled' })
  writer.flushManifests()
  await writer.flushIndex()
  const incomplete = await source(root).poll(never)
  t.same(incomplete.entries, [])
  t.match(incomplete.diagnostics, [{ code: 'kopia-no-backups', location: `${root}/`, read: { snapshots: { complete: 0, incomplete: 1 } }, message: /it holds no complete snapshot; .* 0 complete snapshots \(1 incomplete\)/ }])

  for (let i = 0; i < 6; i++) writer.addSnapshot({ username: `app${i}`, hostname: 'Laptop.local', path: '/home', startTime: '2026-01-02T00:00:00Z' })
  writer.flushManifests()
  await writer.flushIndex()
  const unmapped = await source(root, ', identity: {username: "{{pvc}}", hostname: "{{namespace}}"}').poll(never)
  t.same(unmapped.entries, [], 'Laptop.local is no namespace name')
  t.equal(unmapped.diagnostics?.length, 1)
  t.match(unmapped.diagnostics?.[0]?.message, 'none of its 6 snapshot source(s) (app0@Laptop.local:/home, app1@Laptop.local:/home, app2@Laptop.local:/home, app3@Laptop.local:/home, app4@Laptop.local:/home, ... (1 more)) maps to a PVC by identity {"username":"{{pvc}}","hostname":"{{namespace}}"}')
  t.match(unmapped.diagnostics?.[0]?.read, { snapshots: { complete: 6, incomplete: 1, sources: 6 } })
})
