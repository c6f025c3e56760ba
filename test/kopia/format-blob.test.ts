import t from 'tap'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { FsBlobStore } from '../../src/storage/fs-store.ts'
import { KopiaRepository } from '../../src/kopia/repository.ts'
import { directoryTarget } from '../support/kopia-target.ts'
import { KopiaError } from '../../src/kopia/errors.ts'
import { decryptFormat, isUpgradeLocked, parseFormatBlob, unlockFormat } from '../../src/kopia/format-blob.ts'
import { cachedFormatKey, deriveFormatKey } from '../../src/kopia/key-derivation.ts'
import { buildFormatBlob } from '../support/kopia-format.ts'
import vectors from '../fixtures/kopia/vectors.json' with { type: 'json' }

const fixtures = new URL('../fixtures/kopia/real-kopiakt-fixtures/', import.meta.url)
const ctx = { location: '/repo/', blobId: 'kopia.repository' }
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

t.test('real format blobs written by Go kopia open with their password', async (t) => {
  t.equal(vectors.realFormatBlobs.cases.length, 4)
  for (const c of vectors.realFormatBlobs.cases) {
    const blob = parseFormatBlob(readFileSync(new URL(`${c.fixture}/kopia.repository`, fixtures)), ctx)
    t.equal(blob.keyAlgorithm, 'scrypt-65536-8-1')
    const formatKey = await deriveFormatKey(blob.uniqueId, blob.keyAlgorithm, vectors.realFormatBlobs.password)
    t.equal(sha256(formatKey), c.expected.formatKeySha256, `${c.fixture}: scrypt output`)
    const format = decryptFormat(blob, formatKey, ctx)
    if (format === null) { t.fail(`${c.fixture} did not decrypt`); continue }
    t.equal(sha256(format.masterKey), c.expected.masterKeySha256, `${c.fixture}: master key`)
    t.equal(format.hash, c.expected.hash)
    t.equal(format.encryption, c.expected.encryption)
    t.equal(format.version, c.expected.version)
    t.equal(format.indexVersion, c.expected.indexVersion)
    t.equal(format.epochEnabled, c.expected.epochEnabled)
  }
})

t.test('a wrong password is a KopiaError that says so, without the password', async (t) => {
  const blob = parseFormatBlob(readFileSync(new URL('test_repository/kopia.repository', fixtures)), ctx)
  const error = await unlockFormat(blob, 'not-the-password', ctx).then(() => null, (e: unknown) => e)
  t.ok(error instanceof KopiaError)
  if (!(error instanceof KopiaError)) return
  t.equal(error.code, 'wrong-password')
  t.match(error.message, /password is wrong/)
  t.match(error.message, /\/repo\/.*kopia\.repository/)
  t.notMatch(error.message, /not-the-password/)
  // the derived key is cached: the right password opens without a second derivation
  t.ok(cachedFormatKey(blob.uniqueId, blob.keyAlgorithm, vectors.realFormatBlobs.password), 'derived earlier in this file')
  t.equal((await unlockFormat(blob, vectors.realFormatBlobs.password, ctx)).version, 3)
})

t.test('pbkdf2 repositories open too', async (t) => {
  const built = buildFormatBlob({ password: 'pbkdf2 pässword', keyAlgorithm: 'pbkdf2-sha256-600000', encryption: 'CHACHA20-POLY1305-HMAC-SHA256' })
  const blob = parseFormatBlob(built.bytes, ctx)
  t.equal(blob.keyAlgorithm, 'pbkdf2-sha256-600000')
  const format = await unlockFormat(blob, 'pbkdf2 pässword', ctx)
  t.same(format.masterKey, built.masterKey)
  t.equal(format.encryption, 'CHACHA20-POLY1305-HMAC-SHA256')
  await t.rejects(unlockFormat(blob, 'pbkdf2 password', ctx), { code: 'wrong-password' }, 'no normalization of the password')
})

t.test('format blobs this reader must refuse, each with a clear reason', async (t) => {
  const uniqueId = Buffer.alloc(32, 9)
  const refuse = async (extra: Record<string, unknown>, pattern: RegExp, code = 'unsupported') => {
    const blob = parseFormatBlob(buildFormatBlob({ password: 'pw', uniqueId, extra }).bytes, ctx)
    await t.rejects(unlockFormat(blob, 'pw', ctx), { name: 'KopiaError', code, message: pattern })
  }
  await refuse({ ecc: 'REED-SOLOMON-CRC32', eccOverheadPercent: 2 }, /error correction REED-SOLOMON-CRC32/)
  await refuse({ version: 4 }, /format version 4/)
  await refuse({ indexVersion: 3 }, /index version 3/)
  await refuse({ hash: 'MD5' }, /content hash "MD5"/)
  await refuse({ encryption: 'XCHACHA20' }, /content encryption "XCHACHA20"/)
  await refuse({ requiredFeatures: [{ feature: 'index-v3', ifNotUnderstood: { warn: false } }] }, /feature "index-v3"/)
  const warned = parseFormatBlob(buildFormatBlob({ password: 'pw', uniqueId, extra: { requiredFeatures: [{ feature: 'shiny', ifNotUnderstood: { warn: true } }, { feature: 'index-v2' }], ecc: 'REED-SOLOMON-CRC32' } }).bytes, ctx)
  t.equal((await unlockFormat(warned, 'pw', ctx)).version, 3, 'warn-only features and ECC without overhead are fine')

  const outer = JSON.parse(buildFormatBlob({ password: 'pw', uniqueId }).bytes.toString()) as Record<string, unknown>
  await t.rejects(unlockFormat(parseFormatBlob(Buffer.from(JSON.stringify({ ...outer, keyAlgo: 'argon2' })), ctx), 'pw', ctx), { code: 'unsupported', message: /key derivation "argon2"/ })
  await t.rejects(unlockFormat(parseFormatBlob(Buffer.from(JSON.stringify({ ...outer, encryption: 'NONE' })), ctx), 'pw', ctx), { code: 'unsupported', message: /encryption "NONE"/ })
  t.throws(() => parseFormatBlob(Buffer.from('{"uniqueID":'), ctx), { code: 'corrupt', message: /kopia\.repository: is not JSON/ })
  t.throws(() => parseFormatBlob(Buffer.from(JSON.stringify({ ...outer, uniqueID: '' })), ctx), { code: 'corrupt', message: /uniqueID/ })
  const truncatedBox = { ...outer, encryptedBlockFormat: Buffer.from(String(outer['encryptedBlockFormat']), 'base64').subarray(0, 40).toString('base64') }
  await t.rejects(unlockFormat(parseFormatBlob(Buffer.from(JSON.stringify(truncatedBox)), ctx), 'pw', ctx), { code: 'wrong-password' }, 'a damaged box cannot be told apart from a wrong password')
})

t.test('upgrade lock: locked inside the notice window or at once without enough notice', async (t) => {
  const s = 1_000_000_000
  const lock = { creationMs: 1_000_000, advanceNoticeNs: 3600 * s, ioDrainTimeoutNs: 60 * s, maxPermittedClockDriftNs: 30 * s, message: '' }
  t.equal(isUpgradeLocked(undefined, 0), false)
  t.equal(isUpgradeLocked(lock, 1_000_000), false, 'notice given, window not reached')
  t.equal(isUpgradeLocked(lock, 1_000_000 + (3600 - 150) * 1000), true, 'drain window reached')
  t.equal(isUpgradeLocked({ ...lock, advanceNoticeNs: 0 }, 0), true, 'no notice: immediate')
})

t.test('real format blobs open through KopiaRepository on a directory repository', async (t) => {
  for (const [fixture, version] of [['test_repository', 3], ['v1_test_repo', 1]] as const) {
    const target = await directoryTarget()
    t.teardown(() => target.cleanup())
    await target.put('kopia.repository.f', readFileSync(new URL(`${fixture}/kopia.repository`, fixtures)))
    await target.put('.shards', Buffer.from(version === 1 ? '{"default":[3,3],"maxNonShardedLength":20}' : '{"default":[1,3],"maxNonShardedLength":20}'))
    const repository = await KopiaRepository.open(new FsBlobStore(target.root), vectors.realFormatBlobs.password)
    t.equal(repository.formatVersion, version, fixture)
    t.same(await repository.poll(), [], 'no index blobs: no sources')
    await t.rejects(KopiaRepository.open(new FsBlobStore(target.root), 'test1234'), { name: 'KopiaError', code: 'wrong-password', message: /the password is wrong/ })
  }
})
