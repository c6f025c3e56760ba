import t from 'tap'
import { readFileSync } from 'node:fs'
import { FsBlobStore } from '../../src/storage/fs-store.ts'
import { detectLayout, FlatLayout, LEGACY_SHARDS, parseShards, shardedKey, ShardedLayout } from '../../src/kopia/blob-layout.ts'
import { directoryTarget } from '../support/kopia-target.ts'
import vectors from '../fixtures/kopia/vectors.json' with { type: 'json' }

t.test("shard paths: kopia's own tables and real repository layouts", async (t) => {
  let checked = 0
  for (const c of vectors.filesystemSharding.cases) {
    const params = parseShards(Buffer.from(JSON.stringify(c.shardsJson)))
    if (params === null) { t.fail('shards did not parse'); continue }
    for (const [blobId, path] of Object.entries(c.map)) {
      t.equal(shardedKey(params, blobId), path, blobId)
      checked++
    }
  }
  t.equal(checked, 25)
})

t.test('.shards parsing', async (t) => {
  const real = readFileSync(new URL('../fixtures/kopia/real-syntinel/63765b0/blob-list/.shards', import.meta.url))
  t.same(parseShards(real), { defaultShards: [], maxNonShardedLength: 20, overrides: [] }, 'real SyntinelNyx cache .shards')
  t.equal(parseShards(Buffer.from('{"default":[0]}')), null, 'zero width')
  t.equal(parseShards(Buffer.from('{"default":[1],"overrides":[{"shards":[1]}]}')), null, 'override without prefix')
  t.equal(parseShards(Buffer.from('[1,3]')), null)
  t.same(LEGACY_SHARDS.defaultShards, [3, 3])
})

t.test('detection and listing on a directory', async (t) => {
  const target = await directoryTarget()
  t.teardown(() => target.cleanup())
  const store = new FsBlobStore(target.root)
  await t.rejects(detectLayout(store), { code: 'not-a-repository' })

  // No .shards (a very old repository): kopia assumes [3,3].
  await target.put('kopia.repository.f', Buffer.from('{}'))
  const legacy = await detectLayout(store)
  t.ok(legacy instanceof ShardedLayout)
  t.equal(legacy.keyOf('n070452b1e248dc73f11cb1f30610afed-sa8c5b132fec1a67c13d'), 'n07/045/2b1e248dc73f11cb1f30610afed-sa8c5b132fec1a67c13d.f')

  await target.put('.shards', Buffer.from('{"default":[1,3],"maxNonShardedLength":20}'))
  const layout = await detectLayout(store)
  t.equal(layout.description, 'sharded [1,3]/20')
  const ids = ['xe1', 'xw1700000000', 'xn0_86e1a966f4faa78b4155dbe7f1866fa8-sc05c6694229ca11e13d-c1', 'xs0_16e1a966f4faa78b4155dbe7f1866fa8-s0123456789abcdef-c1', 'q4e54ada559c93439482ed8be56def45d-sc05c6694229ca11e13d']
  for (const id of ids) await target.put(layout.keyOf(id), Buffer.from(id))
  // Written with other shard widths: listing rebuilds IDs from paths alone, as kopia does.
  await target.put('x/n0/_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-s1-c1.f', Buffer.from('odd'))
  await target.put('x/n0_/partial-upload.f.tmp', Buffer.from('tmp'))
  const listed = await layout.list('x')
  t.same(listed.map((b) => b.id), [...ids.filter((id) => id.startsWith('x')), 'xn0_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-s1-c1'].sort())
  t.same((await layout.list('xn0_')).map((b) => b.id), ['xn0_86e1a966f4faa78b4155dbe7f1866fa8-sc05c6694229ca11e13d-c1', 'xn0_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-s1-c1'])
  const one = listed.find((b) => b.id === 'xw1700000000')
  t.equal(one?.key, 'xw1700000000.f')
  t.equal(one?.size, 12)
})

t.test('flat layout: prefix concatenation, nothing below a further "/"', async (t) => {
  const target = await directoryTarget()
  t.teardown(() => target.cleanup())
  const store = new FsBlobStore(target.root)
  for (const key of ['kopia.repository', 'xn0_a-s1-c1', 'xe1', 'x/ignored', 'snapshot-xn0_b-s1-c1', 'q123']) await target.put(key, Buffer.from(key))
  t.ok((await detectLayout(store)) instanceof FlatLayout)
  const flat = new FlatLayout(store)
  t.same((await flat.list('x')).map((b) => b.id), ['xe1', 'xn0_a-s1-c1'])
  const prefixed = new FlatLayout(store, 'snapshot-')
  t.equal(prefixed.keyOf('kopia.repository'), 'snapshot-kopia.repository')
  t.same((await prefixed.list('x')).map((b) => [b.id, b.key]), [['xn0_b-s1-c1', 'snapshot-xn0_b-s1-c1']])
})
