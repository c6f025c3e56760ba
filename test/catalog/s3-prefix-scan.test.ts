// The s3-prefix source's flat scan gives exactly what one listing per repository gave, for the same
// keys, on a directory and on a real S3 server (s3rver on loopback), at any page size (a page
// boundary anywhere inside a repository), and makes far fewer listing requests.
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import t, { type Test } from 'tap'
import { listLayout } from '../../src/catalog/repository-listing.ts'
import { type S3PrefixContext, s3PrefixSource } from '../../src/catalog/s3-prefix-source.ts'
import type { S3PrefixSourceConfig } from '../../src/config/schema.ts'
import { ResticKeyCache } from '../../src/restic/key-cache.ts'
import type { SourcePoll } from '../../src/state/catalog-state.ts'
import type { BlobStore } from '../../src/storage/blob-store.ts'
import { FsBlobStore } from '../../src/storage/fs-store.ts'
import { s3BlobStore } from '../../src/storage/s3-store.ts'
import { RESTIC_FIXTURES, RESTIC_PASSWORD } from '../support/restic-layout.ts'
import { LocalS3 } from '../support/s3-server.ts'

const never = new AbortController().signal
const keys = new ResticKeyCache()
const id = (n: number) => n.toString(16).padStart(64, '0')

async function fixture(name: string): Promise<Array<[string, Buffer]>> {
  const root = join(RESTIC_FIXTURES, name)
  const files = (await readdir(root, { recursive: true, withFileTypes: true })).filter((d) => d.isFile())
  return Promise.all(files.map(async (d) => [relative(root, join(d.parentPath, d.name)).split('\\').join('/'), await readFile(join(d.parentPath, d.name))] as [string, Buffer]))
}

/** Keys of a varied per-PVC layout: restic (real and listed-only), Kopia, both, big repositories, names with - . _, junk, the stripped-slash diagnostic. */
async function variedLayout(): Promise<Map<string, Buffer | string>> {
  const objects = new Map<string, Buffer | string>()
  const repository = (at: string, files: Iterable<readonly [string, Buffer | string]>) => { for (const [k, v] of files) objects.set(`${at}/${k}`, v) }
  const [v2, v1, empty] = await Promise.all([fixture('v2'), fixture('v1'), fixture('empty')])
  repository('apps/app', v2)
  repository('apps/app', Array.from({ length: 300 }, (_, i) => [`data/${(i % 256).toString(16).padStart(2, '0')}/${id(i + 1000)}`, 'pack'] as const))
  repository('apps/app-db', v1)
  repository('apps/app.x', empty)
  repository('apps/app_x', [['_log_0001', 'l'], ['kopia.blobcfg', '{}'], ['kopia.repository', '{"format":1}'], ...Array.from({ length: 120 }, (_, i) => [`p${id(i)}`, 'pack'] as const), ['q0001', 'q'], ['x0001', 'x'], ['xn0_0001', 'x']])
  repository('apps/appa', [['config', 'c'], ['keys/0001', 'k'], ['locks/0001', 'l'], ...Array.from({ length: 40 }, (_, i) => [`snapshots/${id(i)}`, `snapshot ${i}`] as const)])
  repository('apps/both', [['config', 'c'], ['kopia.repository', 'k'], [`snapshots/${id(7)}`, 's']])
  repository('apps/nested', [['config', 'c'], [`snapshots/sub/${id(8)}`, 's'], ['snapshots/not-an-id', 's'], ['snapshots0', 's']])
  repository('apps/readme', [['notes.txt', 'not a repository']])
  objects.set('apps/appkopia.repository', '{}')
  objects.set('apps/app-dbkopia.repository', '{}')
  objects.set('apps/kopia.repository', '{}')
  objects.set('apps/_log', 'namespace junk')
  objects.set('README', 'root junk')
  repository('big/kopia', [['kopia.repository', '{"format":2}'], ...Array.from({ length: 150 }, (_, i) => [`p${id(i)}`, 'pack'] as const), ['xn0_1', 'x']])
  repository('big/restic', [['config', 'c'], ...Array.from({ length: 150 }, (_, i) => [`data/${(i % 256).toString(16).padStart(2, '0')}/${id(i)}`, 'pack'] as const), [`snapshots/${id(1)}`, 's'], [`snapshots/${id(2)}`, 's']])
  repository('big/zz', v2)
  return objects
}

async function writeDirectory(t: Test, objects: Map<string, Buffer | string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'scan-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  for (const [key, body] of objects) {
    const file = join(root, ...key.split('/'))
    await mkdir(dirname(file), { recursive: true })
    await writeFile(file, body)
  }
  return root
}

async function passwordFiles(t: Test): Promise<{ resticPasswordFile: string; kopiaPasswordFile: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'scan-password-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'restic'), RESTIC_PASSWORD)
  await writeFile(join(dir, 'kopia'), 'kopia-password')
  return { resticPasswordFile: join(dir, 'restic'), kopiaPasswordFile: join(dir, 'kopia') }
}

/** One poll's answer with the given listing, and the listing requests it made. */
async function pollWith(config: S3PrefixSourceConfig, listing: 'scan' | 'per-repository', pageSize?: number): Promise<{ poll: SourcePoll; requests: number }> {
  let requests = -1
  const context: S3PrefixContext = { resticKeys: keys, listing, ...(pageSize !== undefined ? { pageSize } : {}), onListed: (n) => { requests = n } }
  const poll = await s3PrefixSource(config, context).poll(never)
  return { poll, requests }
}

// Thousands of small objects: on tmpfs where there is one, so the disk does not set the test's pace.
const s3 = await LocalS3.start(existsSync('/dev/shm') ? '/dev/shm' : tmpdir())
t.teardown(() => s3.close())
const objects = await variedLayout()
await s3.createBucket('scan')
await s3.writeObjects('scan', [...objects].map(([k, v]) => [`volsync/${k}`, v] as const))

async function equivalence(t: Test, config: S3PrefixSourceConfig, pageSizes: ReadonlyArray<number | undefined>): Promise<void> {
  const reference = await pollWith(config, 'per-repository')
  t.same(reference.poll.entries.map((e) => [e.namespace, e.pvc, e.kind, e.snapshots]).filter(([, , kind]) => kind === 'restic').map(([, pvc, , n]) => [pvc, n]),
    [['app', 3], ['app-db', 1], ['appa', 40], ['both', 1], ['restic', 2], ['zz', 3]], 'the reference: restic repositories with a snapshot (restic wins over a format blob beside it)')
  t.same(reference.poll.diagnostics?.filter((d) => d.code === 'kopia-prefix-without-slash').map((d) => d.pvc).sort(), ['app', 'app-db'], 'the reference: both stripped-slash blobs')
  for (const pageSize of pageSizes) {
    const scanned = await pollWith(config, 'scan', pageSize)
    t.same(scanned.poll, reference.poll, `page size ${pageSize ?? 'default'}: the same answer (${scanned.requests} listing requests against ${reference.requests})`)
  }
}

t.test('on a real S3 server the scan answers exactly like one listing per repository, page boundaries anywhere', async (t) => {
  const config: S3PrefixSourceConfig = { name: 'garage', type: 's3-prefix', s3: s3.location('scan', { prefix: 'volsync' }), concurrency: 4 }
  await equivalence(t, config, [1, 2, 3, 7, 64, undefined])
})

t.test('with passwords too (restic read exactly, unreadable repositories reported), on S3', async (t) => {
  const config: S3PrefixSourceConfig = { name: 'garage', type: 's3-prefix', s3: s3.location('scan', { prefix: 'volsync' }), concurrency: 4, ...(await passwordFiles(t)) }
  await equivalence(t, config, [5, undefined])
  const { poll } = await pollWith(config, 'scan')
  t.equal(poll.entries.find((e) => e.pvc === 'app')?.newest, poll.entries.find((e) => e.pvc === 'zz')?.newest, 'the real restic repositories read exactly')
  t.ok(poll.diagnostics?.some((d) => d.code === 'repository-unreadable' && d.pvc === 'app_x'), 'the fake Kopia repository is reported unreadable')
})

t.test('in a directory the scan answers the same as its listing per repository', async (t) => {
  const root = await writeDirectory(t, objects)
  const config: S3PrefixSourceConfig = { name: 'nas', type: 's3-prefix', filesystem: { path: root }, concurrency: 4 }
  // Page size 1 and 2 are covered on S3; a directory's page walks the whole namespace, so a few here.
  await equivalence(t, config, [7, undefined])
  const configured = await pollWith(config, 'per-repository')
  t.same((await s3PrefixSource(config, { resticKeys: keys }).poll(never)), configured.poll, 'a directory lists per repository by default')
})

/** `store` with its listPage calls (and its sub views') counted. */
function counting(store: BlobStore, count: { listings: number }): BlobStore {
  return {
    location: store.location,
    listPage: (prefix, options) => { count.listings++; return store.listPage(prefix, options) },
    get: (key, signal) => store.get(key, signal),
    getRange: (key, offset, length, signal) => store.getRange(key, offset, length, signal),
    stat: (key, signal) => store.stat(key, signal),
    sub: (prefix) => counting(store.sub(prefix), count),
  }
}

t.test('listing requests: a fraction of one per small repository; no more than one per large one', async (t) => {
  const v2 = await fixture('v2')
  const small = new Map<string, Buffer | string>()
  for (let i = 0; i < 80; i++) for (const [k, v] of v2) small.set(`ns-${i % 2}/pvc-${String(i).padStart(3, '0')}/${k}`, v)
  await s3.createBucket('count-small')
  await s3.writeObjects('count-small', small)
  const large = new Map<string, Buffer | string>()
  for (let i = 0; i < 3; i++) {
    large.set(`ns/pvc-${i}/config`, 'c')
    for (let p = 0; p < 300; p++) large.set(`ns/pvc-${i}/data/${(p % 256).toString(16).padStart(2, '0')}/${id(p)}`, 'p')
    large.set(`ns/pvc-${i}/snapshots/${id(i)}`, 's')
  }
  await s3.createBucket('count-large')
  await s3.writeObjects('count-large', large)

  const count = async (bucket: string, way: 'scan' | 'per-repository', pageSize?: number) => {
    const counter = { listings: 0 }
    const { listing, requests } = await listLayout(counting(s3BlobStore(s3.location(bucket)), counter), { concurrency: 4, ...(pageSize !== undefined ? { pageSize } : {}) }, way)
    t.equal(requests, counter.listings, 'the count the source reports is the store\'s')
    return { listings: counter.listings, repositories: listing.repositories.size }
  }
  const smallScan = await count('count-small', 'scan')
  const smallEach = await count('count-small', 'per-repository')
  t.same(smallScan, { listings: 1 + 2, repositories: 80 }, '80 repositories of 14 keys in 2 namespaces: the root, then one page per namespace (560 keys each)')
  t.same(smallEach, { listings: 1 + 2 + 80, repositories: 80 }, 'one listing per repository before')
  // Large against the page: 302 keys per repository, pages of 100 (as thousands of packs against 1,000).
  const largeScan = await count('count-large', 'scan', 100)
  const largeEach = await count('count-large', 'per-repository')
  t.equal(largeEach.listings, 1 + 1 + 3, 'before: the root, the namespace, one snapshots/ listing each')
  t.ok(largeScan.listings <= largeEach.listings, `repositories of 302 keys, pages of 100: ${largeScan.listings} scan requests, no more than one each (a page that ends in the packs resumes at snapshots/)`)

  const config: S3PrefixSourceConfig = { name: 'garage', type: 's3-prefix', s3: s3.location('count-small'), concurrency: 4 }
  let polls = 0
  const source = s3PrefixSource(config, { resticKeys: keys, onListed: (n) => { polls++; t.equal(n, 3, `poll ${polls}: 3 listing requests for 80 repositories`) } })
  const first = await source.poll(never)
  const unchanged = await source.poll(never)
  t.equal(polls, 2)
  t.equal(first.entries.length, 80)
  t.same(unchanged, first, 'an unchanged poll answers the same')
})

t.test('with the recheck policy (catalog.backupRecheckInterval), polls of an unchanged layout answer exactly as full polls', async (t) => {
  const config: S3PrefixSourceConfig = { name: 'garage', type: 's3-prefix', s3: s3.location('scan', { prefix: 'volsync' }), concurrency: 4, ...(await passwordFiles(t)) }
  const reference = (await pollWith(config, 'per-repository')).poll
  const clock = { now: 0 }
  const source = s3PrefixSource(config, { resticKeys: keys, pageSize: 3, recheck: { backupRecheckMs: 10 * 60_000 }, now: () => clock.now })
  for (let poll = 0; poll <= 12; poll++) {
    clock.now += 60_000
    t.same(await source.poll(never), reference, `poll ${poll}: restic and Kopia repositories, diagnostics and the stripped-slash blobs as a full poll`)
  }
})
