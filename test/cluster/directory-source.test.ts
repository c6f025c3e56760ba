import t from 'tap'
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DirectoryClusterSource, readClusterDirectory } from '../../src/cluster/directory-source.ts'
import type { ClusterState } from '../../src/state/cluster-state.ts'

const silent = { info() {}, warn() {} }

t.test('reads RDs (with latestImage), namespaces and secret keys from multi-document YAML', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'var-state-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await cp('test/fixtures/volsync/rd-kopia-with-latestimage.yaml', join(dir, 'a.yaml'))
  await cp('test/fixtures/volsync/rd-kopia-no-latestimage.yaml', join(dir, 'b.yml'))
  await writeFile(join(dir, 'ns.yaml'), 'apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: media}}\n- {apiVersion: v1, kind: Secret, metadata: {name: s, namespace: media}, data: {KOPIA_PASSWORD: eA==}}\n- 42\n')
  await writeFile(join(dir, 'notes.txt'), 'not yaml: [')
  const { state, problems } = await readClusterDirectory(dir)
  t.same([...state.replicationDestinations.keys()].sort(), ['media/jellyfin-dst', 'media/radarr-dst', 'media/sonarr-dst'])
  t.same(state.replicationDestinations.get('media/jellyfin-dst')?.latestImage, { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'volsync-jellyfin-dst-dest-20260316081130' })
  t.equal(state.replicationDestinations.get('media/sonarr-dst')?.latestImage, null)
  t.equal(state.replicationDestinations.get('media/sonarr-dst')?.copyMethod, 'Snapshot')
  t.same([...state.namespaces], ['media'])
  t.same(state.secrets.get('media/s'), ['KOPIA_PASSWORD'])
  t.equal(problems.length, 1, 'the bare number is reported, not fatal')
})

t.test('watch: a change is published; a broken file keeps the last good state', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'var-state-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'ns.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: {name: one}\n')
  const published: ClusterState[] = []
  const source = new DirectoryClusterSource(dir, (s) => published.push(s), silent)
  await source.start()
  t.teardown(() => source.stop())
  t.equal(source.loaded, true)
  t.same([...published.at(-1)!.namespaces], ['one'])

  await writeFile(join(dir, 'ns2.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: {name: two}\n')
  const deadline = Date.now() + 5000
  while (published.at(-1)!.namespaces.size < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  t.same([...published.at(-1)!.namespaces].sort(), ['one', 'two'], 'the directory watch re-read it')

  const count = published.length
  await writeFile(join(dir, 'ns2.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: {name: [broken\n')
  await source.load()
  t.equal(published.length, count, 'nothing published for a broken file')
  t.match(source.lastError, /ns2\.yaml/)
})
