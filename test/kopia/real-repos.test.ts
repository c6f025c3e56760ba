// Issue #15: the reader on real kopia ciphertext. Two filesystem repositories written by Go kopia
// 0.23.1 (password `test-password`, published with them), read end to end: decrypted format,
// every index blob, the merged manifest view, zero snapshots, and what the catalog says about
// them. The figures are those of ../shared/fixtures/kopia/real-repos/README.md (checked there
// with an independent Python implementation); the few marked "measured" were counted by a
// separate throw-away script over the same bytes and agree with the README's.
//
// The repositories' source carries no licence, so they are never copied into this project: they
// are read in place from the `shared/` folder beside the repository root (CI lays a copy beside
// the clone). Where it is absent, every test here says so and skips.
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { kopiaSource } from '../../src/catalog/kopia-source.ts'
import { catalogCommand } from '../../src/commands/catalog.ts'
import { parseConfig } from '../../src/config/load.ts'
import type { KopiaSourceConfig } from '../../src/config/schema.ts'
import { KopiaRepository, type KopiaReadSummary } from '../../src/kopia/repository.ts'
import { FsBlobStore } from '../../src/storage/fs-store.ts'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const REAL = resolve(repoRoot, '..', 'shared', 'fixtures', 'kopia', 'real-repos', 'iurim159-kmfm')
const absent = existsSync(REAL) ? false : `real kopia repositories not found at ${REAL} (the shared/ folder beside the repository root)`
const PASSWORD = 'test-password'
const never = new AbortController().signal

interface Expected {
  readonly folder: string
  /** base64 of the uniqueID begins so (README). */
  readonly uniqueIdBase64: string
  readonly read: KopiaReadSummary
  readonly live: Readonly<Record<string, Readonly<Record<string, string>>>>
  readonly tombstones: readonly string[]
}

const NO_SNAPSHOTS = { complete: 0, incomplete: 0, unreadable: 0, sources: 0 }

const REPOSITORIES: readonly Expected[] = [
  {
    folder: 'c68c46a-repo',
    uniqueIdBase64: 'bHKOzeG7',
    read: {
      // README: 106 xn0_ + 3 xn1_ index blobs, 105 distinct content IDs, all `m`; live ones in 6 q packs.
      // Measured: 398 entries in those blobs, 9 live contents.
      index: { blobs: 109, entries: 398, manifestEntries: 398 },
      manifestContents: { ids: 105, live: 9, packs: 6 },
      manifests: { ids: 10, live: 2, deleted: 8, liveByType: { maintenance: 1, policy: 1 } },
      snapshots: NO_SNAPSHOTS,
    },
    live: {
      '687e51aee7a0776ecf10765424420b9b': { policyType: 'global', type: 'policy' },
      bd559b841208226041c72142f7ed1ef5: { type: 'maintenance' },
    },
    // Measured (the README says "the rest are deletion tombstones").
    tombstones: [
      '1917f72885071c636b03211888bdb266', '3dfcc03b614ba1d2879fa9a846724ab0', '4987a9ec72d2e20dbc1a266ca0095a46', '4aec74bd1ab32cb2a9c9eab71cefc6e7',
      '61ede9dc3afc2a9ee74bb55d9221e78c', '7d0c16d8de4993e00888dc27b0f36932', '89223f3ec1acb2f55056c8be69fe957a', 'a9509877664d7a0474cc43f57d0082f0',
    ],
  },
  {
    folder: 'b39be31-config-repo-data',
    uniqueIdBase64: 'gW9sXP3M',
    read: {
      // README: 60 index blobs, 59 `m` contents, live ones in 11 q packs. Measured: 109 entries, 11 live contents.
      index: { blobs: 60, entries: 109, manifestEntries: 109 },
      manifestContents: { ids: 59, live: 11, packs: 11 },
      manifests: { ids: 13, live: 3, deleted: 10, liveByType: { maintenance: 1, policy: 1, user: 1 } },
      snapshots: NO_SNAPSHOTS,
    },
    live: {
      '2a1b9760aafb81ac56f93dd1cccff513': { policyType: 'global', type: 'policy' },
      fbba4ad8f360916bdf9d64d8b56f63ea: { type: 'user', username: 'admin@b7d955201359' },
      '94f9d90a28466b80c025ee1b7f367084': { type: 'maintenance' },
    },
    tombstones: [
      '0ad150400a294c7c67aa2e2ed52bb178', '20fede10bf1926e78b5894be79a90ebc', '40f48e12637155cb304c862ed4f6e31f', '79a0b015ecc5860572e24a227d412d17',
      '864a5b80c686dbc76d00b6d7f4eeb5d1', 'c527766112da8c4563a0dd6810104106', 'c623fd08995f6a6107c2b5a874517846', 'd7b76a16077462ca2063a2b3391d6e89',
      'ef15c51a2193bc67cac1edb9298c4e60', 'efe1403ef36c185f12c3c0040d062bd3',
    ],
  },
]

function sourceConfig(root: string, passwordFile: string): KopiaSourceConfig {
  const source = parseConfig(`catalog: {sources: [{name: real, type: kopia, filesystem: {path: "${root}"}, passwordFile: "${passwordFile}"}]}`).catalog.sources[0]
  if (source?.type !== 'kopia') throw new Error('not a kopia source')
  return source
}

const dir = await mkdtemp(join(tmpdir(), 'kopia-real-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
await writeFile(join(dir, 'password'), PASSWORD)
await writeFile(join(dir, 'wrong'), 'not-the-password')

for (const expected of REPOSITORIES) {
  const root = join(REAL, expected.folder)

  t.test(`${expected.folder}: every layer as kopia 0.23.1 wrote it`, { skip: absent }, async (t) => {
    const repository = await KopiaRepository.open(new FsBlobStore(root), PASSWORD)
    t.equal(repository.layout.description, 'sharded [1,3]/20', '.shards ({"default":[1,3],"maxNonShardedLength":20}) honoured')
    const blob = repository.formatBlob
    t.match(blob.uniqueId.toString('base64'), new RegExp(`^${expected.uniqueIdBase64}`), 'uniqueID')
    t.same([blob.keyAlgorithm, blob.encryption, blob.buildVersion], ['scrypt-65536-8-1', 'AES256_GCM', '0.23.1'], 'outer format blob')
    t.same(repository.parameters, {
      hash: 'BLAKE2B-256-128',
      encryption: 'AES256-GCM-HMAC-SHA256',
      version: 3,
      indexVersion: 2,
      maxPackSize: 20971520,
      splitter: 'DYNAMIC-4M-BUZHASH',
      // kopia's defaults, as decrypted here: 20 min refresh, 4 h cleanup margin, 24 h minimum epoch, 10 MiB.
      epoch: {
        enabled: true,
        epochRefreshFrequencyNs: 1_200_000_000_000,
        fullCheckpointFrequency: 7,
        cleanupSafetyMarginNs: 14_400_000_000_000,
        minEpochDurationNs: 86_400_000_000_000,
        epochAdvanceOnCountThreshold: 20,
        epochAdvanceOnTotalSizeBytesThreshold: 10_485_760,
        deleteParallelism: 4,
      },
      enablePasswordChange: true,
    }, 'decrypted format')

    const { sources, read } = await repository.pollDetailed()
    t.same(sources, [], 'no snapshot: no source')
    t.same(read, expected.read, 'every index blob parsed, manifests merged, counts as in the README')
    t.equal(repository.stats.indexBlobsRead, expected.read.index.blobs, 'each index blob fetched and decrypted once')
    t.equal(repository.stats.contentsRead, expected.read.manifestContents.live, 'each live manifest content read once')

    const manifests = repository.manifests()
    t.equal(manifests.length, expected.read.manifests.ids)
    t.same(manifests.filter((m) => !m.deleted).map((m) => [m.id, m.labels]).sort(), Object.entries(expected.live).sort(), 'live manifests and their labels')
    t.same(manifests.filter((m) => m.deleted).map((m) => [m.id, m.type, m.labels]), expected.tombstones.map((id) => [id, '', null]), 'tombstones')
    t.ok(manifests.every((m) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/.test(m.modified) && m.modified.startsWith('2026-08-')), 'modified times parsed (August 2026)')

    const again = await repository.pollDetailed()
    t.same(again.read, read, 'an unchanged poll finds the same')
    t.same([repository.stats.indexBlobsRead, repository.stats.contentsRead], [expected.read.index.blobs, expected.read.manifestContents.live], 'and reads nothing again')
  })

  t.test(`${expected.folder}: through the kopia catalog source`, { skip: absent }, async (t) => {
    const found = await kopiaSource(sourceConfig(root, join(dir, 'password'))).poll(never)
    t.same(found.entries, [], 'no PVC has a backup')
    t.equal(found.repositories?.length, 1, 'the repository is open (for the password-check rule)')
    t.equal(found.diagnostics?.length, 1)
    const [diagnostic] = found.diagnostics ?? []
    t.match(diagnostic, { code: 'kopia-no-backups', location: `${root}/` })
    t.same(diagnostic?.read, expected.read, 'what was read, layer by layer')
    t.notOk(diagnostic?.s3, 'a directory, not S3')
    t.match(diagnostic?.message, /no PVC has a backup in this Kopia repository: it holds no complete snapshot; read \d+ index blobs/)
    const types = Object.entries(expected.read.manifests.liveByType).map(([type, n]) => `${type} ${n}`).join(', ')
    t.match(diagnostic?.message, `${expected.read.manifests.ids} manifests: ${expected.read.manifests.live} live (${types}), ${expected.read.manifests.deleted} deleted`)
  })

  t.test(`${expected.folder}: a wrong password is named as such`, { skip: absent }, async (t) => {
    await t.rejects(KopiaRepository.open(new FsBlobStore(root), 'not-the-password'), { name: 'KopiaError', code: 'wrong-password', message: /password is wrong/ })
    const source = kopiaSource(sourceConfig(root, join(dir, 'wrong')))
    await t.rejects(source.poll(never), { name: 'KopiaError', code: 'wrong-password', message: /kopia\.repository: the password is wrong/ })
  })
}

class Collect extends Writable {
  text = ''
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString('utf8')
    done()
  }
}

interface CatalogJson {
  sources: Array<{ name: string; type: string; ok: boolean; error: string | null; entries: unknown[]; diagnostics: Array<{ code: string; location: string; message: string; read?: KopiaReadSummary }> }>
}

t.test('catalog --json on both: no source error, no entries, a diagnostic that says what was read', { skip: absent }, async (t) => {
  const config = join(dir, 'config.yaml')
  await writeFile(config, [
    'log: { level: silent }',
    'catalog:',
    '  sources:',
    ...REPOSITORIES.map((r) => `    - { name: ${r.folder}, type: kopia, filesystem: { path: "${join(REAL, r.folder)}" }, passwordFile: "${join(dir, 'password')}" }`),
    '',
  ].join('\n'))
  const out = new Collect()
  t.equal(await catalogCommand(['--config', config, '--json'], out), 0, 'exit 0: every source read')
  const doc = JSON.parse(out.text) as CatalogJson
  t.same(doc.sources.map((s) => [s.name, s.type, s.ok, s.error, s.entries.length]), REPOSITORIES.map((r) => [r.folder, 'kopia', true, null, 0]))
  for (const [i, source] of doc.sources.entries()) {
    t.same(source.diagnostics.map((d) => [d.code, d.read]), [['kopia-no-backups', REPOSITORIES[i]!.read]], `${source.name}: what was read`)
  }
})
