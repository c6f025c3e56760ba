// One behaviour, two stores: the directory store and the S3 store against a real S3 server
// (s3rver on loopback) must answer the same questions the same way.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t, { type Test } from 'tap'
import { type BlobStore, BlobNotFoundError, BlobStoreError, listAll } from '../../src/storage/blob-store.ts'
import { FsBlobStore } from '../../src/storage/fs-store.ts'
import { s3BlobStore } from '../../src/storage/s3-store.ts'
import { LocalS3 } from '../support/s3-server.ts'

const OBJECTS: Record<string, string> = {
  'media/jellyfin/config': 'restic config',
  'media/jellyfin/keys/k1': '{"kdf":"scrypt"}',
  'media/jellyfin/snapshots/aa': 'snapshot a',
  'media/jellyfin/snapshots/bb': 'snapshot bb',
  'media/prowlarrkopia.repository': '{}',
  'media/prowlarr/kopia.repository': '{"uniqueID":"x"}',
  'home/notes/data/00/0011': '0123456789',
  'top-level-object': 'x',
}

async function seedDirectory(root: string): Promise<void> {
  for (const [key, body] of Object.entries(OBJECTS)) {
    const file = join(root, ...key.split('/'))
    await mkdir(dirname(file), { recursive: true })
    await writeFile(file, body)
  }
}

async function withStores(t: Test): Promise<Array<[string, BlobStore]>> {
  const root = await mkdtemp(join(tmpdir(), 'fs-store-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  await seedDirectory(root)
  const s3 = await LocalS3.start()
  t.teardown(() => s3.close())
  await s3.createBucket('backups')
  for (const [key, body] of Object.entries(OBJECTS)) await s3.put('backups', `volsync/${key}`, body)
  return [['filesystem', new FsBlobStore(root)], ['s3', s3BlobStore(s3.location('backups'), 'volsync/')]]
}

const same = (store: BlobStore, keys: readonly { key: string }[]) => keys.map((b) => b.key)

t.test('listing with a delimiter rolls folders up, in byte order', async (t) => {
  for (const [kind, store] of await withStores(t)) {
    const root = await listAll(store, '', { delimiter: '/' })
    t.same(root.prefixes, ['home/', 'media/'], `${kind}: namespaces`)
    t.same(same(store, root.blobs), ['top-level-object'], `${kind}: objects at the root`)
    const media = await listAll(store, 'media/', { delimiter: '/' })
    t.same(media.prefixes, ['media/jellyfin/', 'media/prowlarr/'], `${kind}: PVC folders`)
    t.same(same(store, media.blobs), ['media/prowlarrkopia.repository'], `${kind}: an object beside the folders`)
    const partial = await listAll(store, 'media/jellyfin/k', { delimiter: '/' })
    t.same(partial.prefixes, ['media/jellyfin/keys/'], `${kind}: a prefix that ends inside a name`)
    const snapshots = await listAll(store, 'media/jellyfin/snapshots/')
    t.same(snapshots.blobs.map((b) => [b.key, b.size]), [['media/jellyfin/snapshots/aa', 10], ['media/jellyfin/snapshots/bb', 11]], `${kind}: keys and sizes`)
    t.ok(snapshots.blobs.every((b) => Math.abs(b.modifiedMs - Date.now()) < 10 * 60_000), `${kind}: modification times are real`)
    const flat = await listAll(store, 'media/jellyfin/')
    t.same(same(store, flat.blobs), ['media/jellyfin/config', 'media/jellyfin/keys/k1', 'media/jellyfin/snapshots/aa', 'media/jellyfin/snapshots/bb'], `${kind}: no delimiter lists everything below`)
    const after = await listAll(store, 'media/jellyfin/', { startAfter: 'media/jellyfin/keys/k1' })
    t.same(same(store, after.blobs), ['media/jellyfin/snapshots/aa', 'media/jellyfin/snapshots/bb'], `${kind}: startAfter`)
    t.same(await listAll(store, 'nothing/here/'), { blobs: [], prefixes: [] }, `${kind}: listing nothing is empty, not an error`)
  }
})

t.test('get, ranged get, stat and sub-stores', async (t) => {
  for (const [kind, store] of await withStores(t)) {
    t.equal((await store.get('media/jellyfin/config')).toString(), 'restic config', `${kind}: get`)
    t.equal((await store.getRange('home/notes/data/00/0011', 3, 4)).toString(), '3456', `${kind}: range`)
    await t.rejects(store.getRange('home/notes/data/00/0011', 8, 4), BlobStoreError, `${kind}: a range past the end is an error`)
    t.match(await store.stat('media/jellyfin/keys/k1'), { key: 'media/jellyfin/keys/k1', size: 16 }, `${kind}: stat`)
    t.equal(await store.stat('media/jellyfin/nope'), null, `${kind}: stat of a missing blob`)
    const missing = store.get('media/jellyfin/snapshots/cc')
    await t.rejects(missing, BlobNotFoundError, `${kind}: get of a missing blob`)
    await missing.catch((error: Error) => t.match(error.message, /media\/jellyfin\/snapshots\/cc does not exist/, `${kind}: the message names the key`))
    const repo = store.sub('media/jellyfin/')
    t.equal(repo.location, `${store.location}media/jellyfin/`.replace(/\/+$/, '/'), `${kind}: sub-store location`)
    t.same(same(repo, (await listAll(repo, 'snapshots/')).blobs), ['snapshots/aa', 'snapshots/bb'], `${kind}: keys relative to the sub-store`)
    t.equal((await repo.get('config')).toString(), 'restic config', `${kind}: get through the sub-store`)
  }
})

t.test('a directory store never reads outside its root', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'fs-store-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const store = new FsBlobStore(root)
  await t.rejects(store.get('../etc/passwd'), /not a plain relative path/)
  await t.rejects(store.get('/etc/passwd'), /not a plain relative path/)
})

t.test('S3 listings page through more than 1000 keys', async (t) => {
  const s3 = await LocalS3.start()
  t.teardown(() => s3.close())
  await s3.createBucket('many')
  const keys = Array.from({ length: 1205 }, (_, i) => `ns/pvc/snapshots/${String(i).padStart(5, '0')}`)
  await s3.writeObjects('many', keys.map((k) => [k, 'x'] as const))
  const store = s3BlobStore(s3.location('many'))
  const first = await store.listPage('ns/pvc/snapshots/')
  t.equal(first.blobs.length, 1000, 'S3 pages at 1000 keys')
  t.type(first.next, 'string', 'with a continuation token')
  const all = await listAll(store, 'ns/pvc/snapshots/')
  t.same(all.blobs.map((b) => b.key), keys, 'every key once, in order')
})

t.test('S3 failures are clear errors that never carry a secret', async (t) => {
  const s3 = await LocalS3.start()
  t.teardown(() => s3.close())
  await s3.createBucket('backups')
  const wrongKey = s3BlobStore(s3.location('backups', { accessKeyId: 'nobody', secretAccessKey: 'hunter2-secret' }))
  const denied = await wrongKey.listPage('').then(() => null, (e: Error) => e)
  t.type(denied, BlobStoreError)
  t.match(denied?.message, /cannot list s3:\/\/backups\/ at http:\/\/127\.0\.0\.1:\d+: InvalidAccessKeyId: check the access key and secret key/)
  t.notMatch(denied?.message, /hunter2/, 'no secret in the message')

  const noBucket = await s3BlobStore(s3.location('missing-bucket')).listPage('').then(() => null, (e: Error) => e)
  t.match(noBucket?.message, /bucket missing-bucket does not exist at http:\/\/127\.0\.0\.1/)

  const store = s3BlobStore(s3.location('backups'))
  await s3.stop()
  const down = await store.listPage('').then(() => null, (e: Error) => e)
  t.type(down, BlobStoreError)
  t.match(down?.message, /cannot list s3:\/\/backups\/ at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/)
  await s3.resume()
  t.same(await store.listPage(''), { blobs: [], prefixes: [] }, 'the same store works again once the server is back')
})

t.test('credentials from files (a mounted Secret), re-read by the provider', async (t) => {
  const s3 = await LocalS3.start()
  t.teardown(() => s3.close())
  await s3.createBucket('backups')
  await s3.put('backups', 'a', 'b')
  const dir = await mkdtemp(join(tmpdir(), 'creds-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'AWS_ACCESS_KEY_ID'), 'S3RVER\n')
  await writeFile(join(dir, 'AWS_SECRET_ACCESS_KEY'), 'S3RVER\n')
  const { accessKeyId: _id, secretAccessKey: _secret, ...location } = s3.location('backups')
  const store = s3BlobStore({ ...location, accessKeyIdFile: join(dir, 'AWS_ACCESS_KEY_ID'), secretAccessKeyFile: join(dir, 'AWS_SECRET_ACCESS_KEY') })
  t.same((await store.listPage('')).blobs.map((b) => b.key), ['a'], 'trailing newline of a Secret file is ignored')
  const unreadable = s3BlobStore({ ...location, accessKeyIdFile: join(dir, 'missing'), secretAccessKeyFile: join(dir, 'AWS_SECRET_ACCESS_KEY') })
  await t.rejects(unreadable.listPage(''), /cannot read s3\.accessKeyIdFile .*missing: ENOENT/)
})
