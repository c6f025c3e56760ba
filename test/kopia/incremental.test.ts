import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { FsBlobStore } from '../../src/storage/fs-store.ts'
import { KopiaRepository } from '../../src/kopia/repository.ts'
import { checkPassword, passwordVerdict } from '../../src/kopia/password-check.ts'
import { isDerivationKnown } from '../../src/kopia/key-derivation.ts'
import { KopiaTestWriter } from '../support/kopia-writer.ts'
import { clearLog, directoryTarget, recordingStore } from '../support/kopia-target.ts'

const uniqueId = randomBytes(32)
const password = 'incremental'

async function setup(t: Test) {
  const target = await directoryTarget()
  t.teardown(() => target.cleanup())
  const writer = await KopiaTestWriter.create({ password, uniqueId, put: target.put, remove: target.remove })
  const store = recordingStore(new FsBlobStore(target.root))
  return { writer, store, target }
}

const packKey = (writer: KopiaTestWriter, indexBlob: string) => writer.keyOf(writer.indexBlobs.get(indexBlob)?.entries[0]?.packBlobId ?? '')

t.test('a second poll re-reads only index blobs and manifest contents not seen before', async (t) => {
  const { writer, store } = await setup(t)
  writer.addSnapshot({ username: 'a', hostname: 'h', path: '/p', startTime: '2026-01-01T00:00:00Z' })
  writer.flushManifests()
  const first = await writer.flushIndex()
  writer.addSnapshot({ username: 'b', hostname: 'h', path: '/p', startTime: '2026-01-02T00:00:00Z' })
  writer.flushManifests({ compression: 0x1101 })
  const second = await writer.flushIndex()

  const repository = await KopiaRepository.open(store, password)
  clearLog(store.log)
  t.equal((await repository.poll()).length, 2)
  t.same(store.log.gets.sort(), [writer.keyOf(first), writer.keyOf(second)].sort(), 'cold poll: both index blobs')
  t.same(store.log.ranges.map((r) => r.split('@')[0]).sort(), [packKey(writer, first), packKey(writer, second)].sort(), 'one range read per pack')

  clearLog(store.log)
  const again = await repository.poll()
  t.equal(again.length, 2)
  t.same(store.log.gets, [], 'unchanged: no blob read')
  t.same(store.log.ranges, [])
  t.ok(store.log.lists.length > 0, 'just the listing')

  writer.addSnapshot({ username: 'a', hostname: 'h', path: '/p', startTime: '2026-01-03T00:00:00Z' })
  writer.flushManifests()
  const third = await writer.flushIndex()
  clearLog(store.log)
  const after = await repository.poll()
  t.same(store.log.gets, [writer.keyOf(third)], 'only the new index blob')
  t.same(store.log.ranges.map((r) => r.split('@')[0]), [packKey(writer, third)], 'only the new content')
  t.same(after.map((s) => [s.username, s.snapshots, s.newest.startTime]), [['a', 2, '2026-01-03T00:00:00.000000000Z'], ['b', 1, '2026-01-02T00:00:00.000000000Z']])

  // Manifest compaction rewrites everything into one new content: that one is read, the old ones dropped.
  writer.compactManifests()
  const compacted = await writer.flushIndex()
  clearLog(store.log)
  t.same(await repository.poll(), after, 'same answer after manifest compaction')
  t.same(store.log.gets, [writer.keyOf(compacted)])
  t.equal(store.log.ranges.length, 1)
  t.equal(repository.stats.contentsRead, 4)

  // Epoch compaction moves the same entries into new index blobs: those are read, no content is.
  for (let i = 0; i < 3; i++) await writer.advanceEpoch()
  const xs = await writer.compactEpoch(0, { cleanup: true })
  clearLog(store.log)
  t.same(await repository.poll(), after)
  t.same(store.log.gets, xs.map((id) => writer.keyOf(id)), 'only the compaction output')
  t.same(store.log.ranges, [], 'contents are cached by ID, pack and offset')
  t.equal(repository.stats.polls, 5)
})

t.test('format blob refresh: unchanged is free, a password change or another repository is an error', async (t) => {
  const { writer, store, target } = await setup(t)
  writer.addSnapshot({ username: 'a', hostname: 'h', path: '/p', startTime: '2026-01-01T00:00:00Z' })
  writer.flushManifests()
  await writer.flushIndex()
  let now = 0
  const repository = await KopiaRepository.open(store, password, { now: () => now, formatRefreshMs: 1000 })
  await repository.poll()
  now = 5000
  clearLog(store.log)
  await repository.poll()
  t.same(store.log.gets, ['kopia.repository.f'], 'refreshed after the interval, nothing else read')

  await writer.changePassword(password, { upgradeLock: { ownerID: 'me', creationTime: '2026-01-01T00:00:00Z', advanceNoticeDuration: 0, ioDrainTimeout: 1, statusPollInterval: 1, message: 'to v3' } })
  now = 10_000
  await t.rejects(repository.poll(), { code: 'upgrading', message: /upgrade is in progress \(to v3\)/ })
  await writer.changePassword(password)
  now = 15_000
  t.equal((await repository.poll()).length, 1, 'lock gone: polling resumes, caches kept')

  await writer.changePassword('new password')
  now = 20_000
  await t.rejects(repository.poll(), { code: 'wrong-password' })

  const other = await KopiaTestWriter.create({ password, uniqueId: randomBytes(32), keyAlgorithm: 'pbkdf2-sha256-600000', put: target.put })
  t.ok(other)
  now = 30_000
  await t.rejects(repository.poll(), { code: 'changed', message: /different repository/ })
})

t.test('password check: the synchronous verdict only reads the derived-key cache, the async one derives', async (t) => {
  const { writer, store } = await setup(t)
  writer.flushManifests()
  await writer.flushIndex()
  const repository = await KopiaRepository.open(store, password)
  t.equal(repository.checkPassword(password), 'opens', 'derived at open')
  const other = `other-${randomBytes(4).toString('hex')}`
  t.equal(passwordVerdict(repository.formatBlob, other), 'unknown', 'never derived')
  t.notOk(isDerivationKnown(repository.formatBlob.uniqueId, repository.formatBlob.keyAlgorithm, other), 'and asking did not start a derivation')
  t.equal(repository.checkPassword(other), 'unknown', 'nor does the repository\'s check')
  t.notOk(isDerivationKnown(repository.formatBlob.uniqueId, repository.formatBlob.keyAlgorithm, other))
  t.equal(await checkPassword(repository.formatBlob, other), 'wrong', 'derived off-thread')
  t.equal(repository.checkPassword(other), 'wrong', 'now known from the cache')
  t.equal(await checkPassword(repository.formatBlob, password), 'opens')
  t.equal(passwordVerdict({ ...repository.formatBlob, keyAlgorithm: 'argon2' }, password), 'unknown', 'unsupported algorithm')
  t.equal(await checkPassword({ ...repository.formatBlob, keyAlgorithm: 'argon2' }, password), 'unknown', 'unsupported algorithm, async')
})
