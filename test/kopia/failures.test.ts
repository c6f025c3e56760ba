import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { FsBlobStore } from '../../src/storage/fs-store.ts'
import { KopiaError } from '../../src/kopia/errors.ts'
import { KopiaRepository } from '../../src/kopia/repository.ts'
import { KopiaTestWriter } from '../support/kopia-writer.ts'
import { directoryTarget, recordingStore } from '../support/kopia-target.ts'

const uniqueId = randomBytes(32)
const password = 'p4ssw0rd'

async function twoSnapshots(t: Test) {
  const target = await directoryTarget()
  t.teardown(() => target.cleanup())
  const writer = await KopiaTestWriter.create({ password, uniqueId, put: target.put, remove: target.remove })
  writer.addSnapshot({ username: 'a', hostname: 'h', path: '/p', startTime: '2026-01-01T00:00:00Z' })
  writer.flushManifests({ compression: 0x1101 })
  const indexBlob = await writer.flushIndex()
  const pack = writer.indexBlobs.get(indexBlob)?.entries[0]?.packBlobId ?? ''
  const path = (blobId: string) => join(target.root, ...writer.keyOf(blobId).split('/'))
  return { writer, target, store: new FsBlobStore(target.root), indexBlob, pack, path }
}

async function failure(promise: Promise<unknown>): Promise<KopiaError> {
  const error = await promise.then(() => null, (e: unknown) => e)
  if (error instanceof KopiaError) return error
  throw new Error(`expected a KopiaError, got ${String(error)}`)
}

t.test('wrong password: a KopiaError naming the repository, not the password', async (t) => {
  const { store } = await twoSnapshots(t)
  const error = await failure(KopiaRepository.open(store, 'p4ssw0rd '))
  t.equal(error.code, 'wrong-password')
  t.match(error.message, new RegExp(`^kopia repository ${store.location.replace(/[/\\]/g, '.')} blob kopia\\.repository: the password is wrong`))
  t.notMatch(error.message, /p4ssw0rd/)
})

t.test('no repository at the location', async (t) => {
  const target = await directoryTarget()
  t.teardown(() => target.cleanup())
  const error = await failure(KopiaRepository.open(new FsBlobStore(target.root), password))
  t.equal(error.code, 'not-a-repository')
  await target.put('.shards', Buffer.from('{"default":'))
  t.equal((await failure(KopiaRepository.open(new FsBlobStore(target.root), password))).code, 'corrupt', 'unparseable .shards')
})

t.test('a truncated index blob is corrupt, named', async (t) => {
  const { store, indexBlob, path } = await twoSnapshots(t)
  const bytes = await readFile(path(indexBlob))
  await writeFile(path(indexBlob), bytes.subarray(0, bytes.length - 5))
  const repository = await KopiaRepository.open(store, password)
  const error = await failure(repository.poll())
  t.equal(error.code, 'corrupt')
  t.equal(error.blobId, indexBlob)
  t.match(error.message, /does not decrypt: damaged or truncated/)
})

t.test('a garbage index blob (decrypts, does not parse) is corrupt', async (t) => {
  const { writer, store } = await twoSnapshots(t)
  // Encrypted correctly under its name, but the plaintext is not an index.
  const hex = randomBytes(16).toString('hex')
  const { sealContent } = await import('../support/kopia-crypto.ts')
  const blobId = `xn0_${hex}-${writer.session}-c1`
  await writer.putBlob(blobId, sealContent(writer.format.encryption, writer.format.masterKey, Buffer.from(hex, 'hex'), Buffer.from('\u0002 not an index')))
  const error = await failure((await KopiaRepository.open(store, password)).poll())
  t.equal(error.code, 'corrupt')
  t.equal(error.blobId, blobId)
  t.match(error.message, /index v2/)
})

t.test('a missing pack: retried (maintenance race), then a clear error', async (t) => {
  const { store, pack, path } = await twoSnapshots(t)
  const { unlink } = await import('node:fs/promises')
  await unlink(path(pack))
  const recorded = recordingStore(store)
  const error = await failure((await KopiaRepository.open(recorded, password)).poll())
  t.equal(error.code, 'missing')
  t.equal(error.blobId, pack)
  t.match(error.message, /pack blob is missing/)
  t.equal(recorded.log.ranges.length, 3, 'relisted and retried, then gave up')
})

t.test('a truncated pack and a damaged content are corrupt', async (t) => {
  const { store, pack, path } = await twoSnapshots(t)
  const bytes = await readFile(path(pack))
  await writeFile(path(pack), bytes.subarray(0, bytes.length - 1))
  const truncated = await failure((await KopiaRepository.open(store, password)).poll())
  t.equal(truncated.code, 'corrupt')
  t.equal(truncated.blobId, pack)
  bytes[bytes.length - 3]! ^= 0x40
  await writeFile(path(pack), bytes)
  const damaged = await failure((await KopiaRepository.open(store, password)).poll())
  t.equal(damaged.code, 'corrupt')
  t.match(damaged.message, /content m[0-9a-f]{32} at offset 32 .* does not decrypt/)
})

t.test('a manifest content that is not a gzip stream of entries is corrupt', async (t) => {
  const cases: [string, Buffer, RegExp][] = [
    ['not gzip', Buffer.from('{"entries":[]}'), /content m[0-9a-f]{32}\): manifest content is not a gzip stream/],
    ['truncated JSON', gzipSync('{"entries":[{"id":"a","modified":"2026-01-01T00:00:00Z"}'), /not valid JSON/],
    ['repeated entries', gzipSync('{"entries":[],"Entries":[]}'), /repeated entries field/],
    ['entry without id', gzipSync('{"entries":[{"labels":{}}]}'), /entry #0 has no id/],
  ]
  for (const [what, plaintext, message] of cases) {
    const target = await directoryTarget()
    t.teardown(() => target.cleanup())
    const writer = await KopiaTestWriter.create({ password, uniqueId, put: target.put })
    writer.writeManifestBytes(plaintext)
    await writer.flushIndex()
    const error = await failure((await KopiaRepository.open(new FsBlobStore(target.root), password)).poll())
    t.equal(error.code, 'corrupt', what)
    t.match(error.message, message, what)
  }
})

t.test('a snapshot with an unreadable time is skipped, not fatal', async (t) => {
  const target = await directoryTarget()
  t.teardown(() => target.cleanup())
  const writer = await KopiaTestWriter.create({ password, uniqueId, put: target.put })
  writer.addSnapshot({ username: 'a', hostname: 'h', path: '/p', startTime: 'yesterday' })
  writer.addSnapshot({ username: 'a', hostname: 'h', path: '/p', startTime: '2026-01-01T00:00:00Z' })
  writer.flushManifests()
  await writer.flushIndex()
  const sources = await (await KopiaRepository.open(new FsBlobStore(target.root), password)).poll()
  t.equal(sources[0]?.snapshots, 1)
})

t.test('an aborted poll stops', async (t) => {
  const { store } = await twoSnapshots(t)
  const repository = await KopiaRepository.open(store, password)
  await t.rejects(repository.poll(AbortSignal.abort()), { name: 'AbortError' })
  t.equal((await repository.poll()).length, 1, 'and the repository still works afterwards')
})

t.test('files that are not blobs are ignored in a directory repository', async (t) => {
  const { store, target } = await twoSnapshots(t)
  await target.put('x/n0_/tmp-write-in-progress.f.tmp.123', randomBytes(50))
  await target.put('x/README', Buffer.from('hello'))
  t.equal((await (await KopiaRepository.open(store, password)).poll()).length, 1)
})
