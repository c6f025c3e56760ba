import { readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { ResticError } from '../../src/restic/errors.ts'
import { ResticKeyCache } from '../../src/restic/key-cache.ts'
import { ResticRepository, type ResticSnapshot } from '../../src/restic/repository.ts'
import { BlobNotFoundError, BlobStoreError, type BlobStore } from '../../src/storage/blob-store.ts'
import { FsBlobStore } from '../../src/storage/fs-store.ts'
import {
  compressedJson,
  copyFixture,
  CountingStore,
  firstFile,
  fixtureStore,
  masterKeys,
  PASSWORD,
  resticSnapshotsJson,
  SECOND_PASSWORD,
  seal,
  writeContentAddressed,
} from '../support/restic-fixtures.ts'

async function resticFailure(t: Test, promise: Promise<unknown>): Promise<ResticError> {
  try {
    await promise
  } catch (error) {
    t.type(error, ResticError)
    if (error instanceof ResticError) return error
    throw error
  }
  t.fail('expected a ResticError')
  throw new Error('did not fail')
}

/** The fields restic's `snapshots --json` shares with ours. */
function comparable(s: Pick<ResticSnapshot, 'id' | 'time' | 'hostname' | 'username' | 'paths' | 'tree'> & { tags?: readonly string[] | undefined }) {
  return { id: s.id, time: s.time, hostname: s.hostname, username: s.username, paths: [...s.paths], tags: [...(s.tags ?? [])], tree: s.tree }
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : 1)

for (const [name, version, count] of [['v2', 2, 3], ['v1', 1, 1], ['shared', 2, 5], ['two-keys', 2, 1], ['empty', 2, 0]] as const) {
  t.test(`${name}: opens and lists exactly what restic itself reports`, async (t) => {
    const repo = await ResticRepository.open(fixtureStore(name), PASSWORD)
    t.equal(repo.version, version)
    t.match(repo.id, /^[0-9a-f]{64}$/)
    t.equal(repo.location, fixtureStore(name).location)
    const snapshots = await repo.listSnapshots()
    t.equal(snapshots.length, count)
    t.same(snapshots.map(comparable).sort(byId), resticSnapshotsJson(name).map(comparable).sort(byId))
    t.same(snapshots.map((s) => s.timeMs), snapshots.map((s) => s.timeMs).sort((a, b) => a - b), 'oldest first')
    for (const s of snapshots) {
      t.equal(s.timeMs, Date.parse(s.time), `timeMs of ${s.time}`)
      t.notOk('sizeBytes' in s, 'restic 0.14 records no summary')
    }
  })
}

t.test('v2 fixture: nanoseconds and offset kept verbatim, username absent in v1', async (t) => {
  const v2 = await (await ResticRepository.open(fixtureStore('v2'), PASSWORD)).listSnapshots()
  t.ok(v2.some((s) => s.time === '2026-03-15T09:30:00.123456789+01:00'))
  t.same(new Set(v2.map((s) => s.hostname)), new Set(['alpha', 'beta']))
  t.same(v2.find((s) => s.tags.includes('manual'))?.paths, ['/etc/app', '/srv/app'])
  const [v1] = await (await ResticRepository.open(fixtureStore('v1'), PASSWORD)).listSnapshots()
  t.equal(v1?.username, undefined)
  t.notOk(v1 && 'username' in v1)
})

t.test('shared fixture: namespace as hostname, pvc as tag, /data/<ns>/<pvc>', async (t) => {
  const snapshots = await (await ResticRepository.open(fixtureStore('shared'), PASSWORD)).listSnapshots()
  for (const s of snapshots) t.same(s.paths, [`/data/${s.hostname}/${s.tags[0]}`])
  t.equal(snapshots.filter((s) => s.hostname === 'media' && s.tags.includes('jellyfin')).length, 2)
})

t.test('either password opens two-keys, through different key files', async (t) => {
  const first = await ResticRepository.open(fixtureStore('two-keys'), PASSWORD)
  const second = await ResticRepository.open(fixtureStore('two-keys'), SECOND_PASSWORD)
  t.not(first.keyId, second.keyId)
  t.equal(first.id, second.id)
  t.same((await second.listSnapshots()).map((s) => s.id), (await first.listSnapshots()).map((s) => s.id))
})

t.test('wrong password: a clear error that never contains the password', async (t) => {
  const store = fixtureStore('v2')
  const error = await resticFailure(t, ResticRepository.open(store, 'hunter2-not-it'))
  t.equal(error.code, 'wrong-password')
  t.equal(error.message, `wrong password for restic repository ${store.location}: no key in keys/ opens with it`)
  t.equal(error.file, 'keys/')
  t.notMatch(error.message, /hunter2/)
})

t.test('not a repository: missing config, without running scrypt', async (t) => {
  const root = copyFixture('v2', t.testdir())
  unlinkSync(join(root, 'config'))
  const store = new CountingStore(new FsBlobStore(root))
  const error = await resticFailure(t, ResticRepository.open(store, PASSWORD))
  t.equal(error.code, 'not-a-repository')
  t.equal(error.message, `${store.location} is not a restic repository: no config`)
  t.equal(store.getCount('keys/'), 0, 'no key file read')

  const nowhere = new FsBlobStore(join(t.testdir(), 'does-not-exist'))
  t.equal((await resticFailure(t, ResticRepository.open(nowhere, PASSWORD))).code, 'not-a-repository')
})

t.test('no key files', async (t) => {
  const root = copyFixture('v2', t.testdir())
  rmSync(join(root, 'keys'), { recursive: true })
  const error = await resticFailure(t, ResticRepository.open(new FsBlobStore(root), PASSWORD))
  t.equal(error.code, 'no-keys')
  t.match(error.message, root)
  t.match(error.message, 'keys/')
})

t.test('key files that cannot be tried are named; beside a real key the answer stays "wrong password"', async (t) => {
  const root = copyFixture('v2', t.testdir())
  const real = firstFile(root, 'keys')
  const bogus = writeContentAddressed(root, 'keys', Buffer.from(JSON.stringify({ kdf: 'argon2', data: '' })))
  const error = await resticFailure(t, ResticRepository.open(new FsBlobStore(root), 'wrong'))
  t.equal(error.code, 'wrong-password')
  t.match(error.message, `keys/${bogus}: unsupported kdf "argon2"`)

  unlinkSync(join(root, 'keys', real))
  const only = await resticFailure(t, ResticRepository.open(new FsBlobStore(root), PASSWORD))
  t.equal(only.code, 'unusable-keys')
  t.match(only.message, `keys/${bogus}`)

  // A key file whose scrypt cost is absurd is refused, not run.
  unlinkSync(join(root, 'keys', bogus))
  const costly = writeContentAddressed(root, 'keys', Buffer.from(JSON.stringify({ kdf: 'scrypt', N: 2 ** 30, r: 8, p: 1, salt: 'AAAA', data: Buffer.alloc(48, 1).toString('base64') })))
  const refused = await resticFailure(t, ResticRepository.open(new FsBlobStore(root), PASSWORD))
  t.match(refused.message, `keys/${costly}: scrypt parameters N=1073741824 r=8 p=1 exceed`)
})

t.test('damaged snapshot files: a ResticError naming the file', async (t) => {
  const root = copyFixture('v2', t.testdir())
  const repo = await ResticRepository.open(new FsBlobStore(root), PASSWORD)
  const id = firstFile(root, 'snapshots')
  const path = join(root, 'snapshots', id)
  const original = readFileSync(path)

  truncateSync(path, original.length - 5)
  const truncated = await resticFailure(t, repo.listSnapshots())
  t.equal(truncated.code, 'corrupt')
  t.equal(truncated.file, `snapshots/${id}`)
  t.match(truncated.message, `${root}/snapshots/${id}`)

  truncateSync(path, 10)
  t.match((await resticFailure(t, repo.listSnapshots())).message, /too short \(10 bytes\)/)

  const flipped = Buffer.from(original)
  flipped[40]! ^= 0x80
  writeFileSync(path, flipped)
  const mac = await resticFailure(t, repo.listSnapshots())
  t.match(mac.message, new RegExp(`snapshots/${id} is corrupt: MAC mismatch`))

  // A valid file under a name that is not its hash would poison a cache keyed by name.
  writeFileSync(path, original)
  const renamedTo = 'f'.repeat(64)
  writeFileSync(join(root, 'snapshots', renamedTo), original)
  const renamed = await resticFailure(t, repo.listSnapshots())
  t.match(renamed.message, `snapshots/${renamedTo} is corrupt: its content does not match its name`)
  unlinkSync(join(root, 'snapshots', renamedTo))

  t.equal((await repo.listSnapshots()).length, 3, 'repaired, lists again')
})

t.test('forged files: not-a-snapshot JSON, compressed with a summary, unknown encoding', async (t) => {
  const root = copyFixture('v2', t.testdir())
  const store = new FsBlobStore(root)
  const keys = await masterKeys(store)
  const repo = await ResticRepository.open(store, PASSWORD, {})

  const notSnapshot = writeContentAddressed(root, 'snapshots', seal(keys, Buffer.from('{"hello":"world"}')))
  const invalid = await resticFailure(t, repo.listSnapshots())
  t.equal(invalid.code, 'invalid')
  t.equal(invalid.message, `${store.location}snapshots/${notSnapshot} is not a restic snapshot: no "time"`)
  unlinkSync(join(root, 'snapshots', notSnapshot))

  const summary = { time: '2026-03-16T01:02:03.000000004Z', tree: 'c'.repeat(64), paths: ['/data/media/jellyfin'], hostname: 'media', tags: ['jellyfin'], summary: { total_bytes_processed: 987654 } }
  const compressed = writeContentAddressed(root, 'snapshots', seal(keys, compressedJson(summary)))
  const decoded = (await repo.listSnapshots()).find((s) => s.id === compressed)
  t.equal(decoded?.sizeBytes, 987654)
  t.equal(decoded?.time, '2026-03-16T01:02:03.000000004Z')
  t.same(decoded?.tags, ['jellyfin'])

  const odd = writeContentAddressed(root, 'snapshots', seal(keys, Buffer.concat([Buffer.from([3]), Buffer.from('{}')])))
  const unsupported = await resticFailure(t, repo.listSnapshots())
  t.equal(unsupported.code, 'unsupported')
  t.match(unsupported.message, `snapshots/${odd} uses an unsupported encoding (encoding byte 3)`)
  unlinkSync(join(root, 'snapshots', odd))

  const badZstd = writeContentAddressed(root, 'snapshots', seal(keys, Buffer.from([2, 0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3])))
  t.match((await resticFailure(t, repo.listSnapshots())).message, `snapshots/${badZstd} is corrupt: zstd:`)
})

t.test('config: unsupported version, and not a config', async (t) => {
  const root = copyFixture('v2', t.testdir())
  const store = new FsBlobStore(root)
  const keyCache = new ResticKeyCache()
  await ResticRepository.open(store, PASSWORD, { keyCache })
  const keys = await masterKeys(store)
  const forge = (config: unknown) => writeFileSync(join(root, 'config'), seal(keys, Buffer.from(JSON.stringify(config))))

  forge({ version: 3, id: 'a'.repeat(64), chunker_polynomial: '25b468838dcb75' })
  const error = await resticFailure(t, ResticRepository.open(store, PASSWORD, { keyCache }))
  t.equal(error.code, 'unsupported')
  t.equal(error.message, `${store.location}config: unsupported restic repository version 3`)
  t.equal(error.file, 'config')

  forge(['not', 'a', 'config'])
  t.equal((await resticFailure(t, ResticRepository.open(store, PASSWORD, { keyCache }))).code, 'invalid')

  forge({ version: 1, id: 'a'.repeat(64) })
  t.equal((await ResticRepository.open(store, PASSWORD, { keyCache })).version, 1, 'a well-formed forged v1 config opens')

  writeFileSync(join(root, 'config'), Buffer.from('garbage that is not encrypted at all'))
  t.match((await resticFailure(t, ResticRepository.open(store, PASSWORD, { keyCache }))).message, `${root}/config is corrupt: MAC mismatch`)
})

t.test('listSnapshots reads each snapshot file once; new ones are read, forgotten ones drop out', async (t) => {
  const root = copyFixture('shared', t.testdir())
  const store = new CountingStore(new FsBlobStore(root))
  const repo = await ResticRepository.open(store, PASSWORD)
  const first = await repo.listSnapshots()
  t.equal(first.length, 5)
  t.equal(store.getCount('snapshots/'), 5)
  const second = await repo.listSnapshots()
  t.same(second, first)
  t.equal(store.getCount('snapshots/'), 5, 'no snapshot file read again')
  t.ok([...store.gets.values()].every((n) => n === 1), 'no file read twice')

  const keys = await masterKeys(store)
  const added = writeContentAddressed(root, 'snapshots', seal(keys, Buffer.from(JSON.stringify({ time: '2026-03-12T02:00:00Z', tree: 'd'.repeat(64), paths: ['/data/media/jellyfin'], hostname: 'media', tags: ['jellyfin'] }))))
  const forgotten = first[0]!.id
  unlinkSync(join(root, 'snapshots', forgotten))
  const third = await repo.listSnapshots()
  t.equal(store.gets.get(`snapshots/${added}`), 1)
  t.equal(store.getCount('snapshots/'), 6, 'only the new file was read')
  t.notOk(third.some((s) => s.id === forgotten))
  t.equal(third.length, 5)
})

function storeWith(inner: BlobStore, get: (key: string, signal?: AbortSignal) => Promise<Buffer>): BlobStore {
  return {
    location: inner.location,
    listPage: (prefix, options) => inner.listPage(prefix, options),
    get,
    getRange: (key, offset, length, signal) => inner.getRange(key, offset, length, signal),
    stat: (key, signal) => inner.stat(key, signal),
    sub: (prefix) => inner.sub(prefix),
  }
}

t.test('a snapshot forgotten between listing and reading is skipped; a storage failure is a ResticError', async (t) => {
  const inner = fixtureStore('v2')
  const keyCache = new ResticKeyCache()
  const gone = firstFile(join(inner.location), 'snapshots')
  const vanishing = storeWith(inner, (key, signal) => (key === `snapshots/${gone}` ? Promise.reject(new BlobNotFoundError(inner.location, key)) : inner.get(key, signal)))
  const snapshots = await (await ResticRepository.open(vanishing, PASSWORD, { keyCache })).listSnapshots()
  t.equal(snapshots.length, 2)

  const failing = storeWith(inner, (key, signal) => (key.startsWith('snapshots/') ? Promise.reject(new BlobStoreError('connect ECONNREFUSED 127.0.0.1:9000')) : inner.get(key, signal)))
  const error = await resticFailure(t, (await ResticRepository.open(failing, PASSWORD, { keyCache })).listSnapshots())
  t.equal(error.code, 'storage')
  t.match(error.message, /cannot read snapshots\/[0-9a-f]{64} of restic repository .*: connect ECONNREFUSED/)
  t.type(error.cause, BlobStoreError)
})

t.test('an aborted signal aborts, it is not turned into a ResticError', async (t) => {
  const controller = new AbortController()
  controller.abort()
  await t.rejects(ResticRepository.open(fixtureStore('v2'), PASSWORD, { signal: controller.signal }), { name: 'AbortError' })
  const repo = await ResticRepository.open(fixtureStore('v1'), PASSWORD)
  await t.rejects(repo.listSnapshots(controller.signal), { name: 'AbortError' })
})
