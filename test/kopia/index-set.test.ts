import t from 'tap'
import { readdirSync } from 'node:fs'
import { completeSets, epochNumber, epochRange, firstCompleteSet, longestRangeChain } from '../../src/kopia/epoch-rules.ts'
import { parseCompactionLog, selectEpochIndexes, selectLegacyIndexes } from '../../src/kopia/index-set.ts'
import vectors from '../fixtures/kopia/vectors.json' with { type: 'json' }

const named = (ids: readonly string[]) => ids.map((id) => ({ id }))
const ids = (blobs: readonly { id: string }[]) => blobs.map((b) => b.id)

t.test("complete sets: kopia's TestFindFirstAndAll", async (t) => {
  for (const c of vectors.completeSets.cases) t.same(ids(firstCompleteSet(named(c.input)) ?? []), c.first, c.input.join(' '))
  t.same(completeSets(named(['a-s1-c2', 'x', 'b-s1-c2'])).map(ids), [['x'], ['a-s1-c2', 'b-s1-c2']])
})

t.test("epoch numbers and ranges: kopia's TestEpochNumberFromBlobID", async (t) => {
  for (const [id, n] of Object.entries(vectors.epochNumbers.valid)) t.equal(epochNumber(id), n, id)
  for (const id of vectors.epochNumbers.invalid) t.equal(epochNumber(id), null, id)
  t.same(epochRange('xr0_6_abcdef-s1-c1'), [0, 6])
  t.same(epochRange('xr10_19_abc'), [10, 19])
  t.equal(epochRange('xr10_abc'), null)
  t.equal(epochRange('xr1_x_abc'), null)
})

t.test("longest range checkpoint chain: kopia's TestLongestRangeCheckpoint", async (t) => {
  for (const c of vectors.longestRangeCheckpoint.cases) {
    const ranges = c.input.map(([min, max]) => ({ min: min ?? 0, max: max ?? 0, blobs: [] }))
    t.same(longestRangeChain(ranges).map((r) => [r.min, r.max]), c.want, JSON.stringify(c.input))
  }
  t.same(longestRangeChain([{ min: 0, max: 0, blobs: [] }]), [], 'a [0,0] range never starts a chain (as in kopia)')
  t.same(longestRangeChain([{ min: 3, max: 2, blobs: [] }, { min: 0, max: 2, blobs: [] }]).map((r) => r.max), [2, 2], 'an inverted range (never written) terminates; selection skips links not past the start')
})

t.test('the real SyntinelNyx state: epoch 0 only, every xn0 blob', async (t) => {
  const listing = named(readdirSync(new URL('../fixtures/kopia/real-syntinel/63765b0/indexes/', import.meta.url)).map((f) => f.replace(/\.sndx$/, '')))
  const selection = selectEpochIndexes(listing)
  t.equal(selection.writeEpoch, 0)
  t.same(ids(selection.active), ids(listing))
})

t.test('epoch selection: ranges, settled compactions, unsettled epochs, watermark', async (t) => {
  const listing = named([
    'xe1', 'xe2', 'xe3', 'xe4', 'xe5', 'xe6',
    'xw1700000000', 'xw1800000000', 'xwbogus',
    'xr0_2_aa-s1-c2', 'xr0_2_bb-s1-c2', // complete
    'xr0_3_cc-s2-c2', // incomplete: must not win
    'xn0_old-s9-c1', 'xn2_old-s9-c1', // covered by the range
    'xs3_a-s3-c1', 'xn3_a-sx-c1', // settled (3 <= 6-2), compacted: xs wins
    'xs4_a-s4-c2', 'xn4_a-sx-c1', 'xn4_b-sy-c1', // settled, incomplete xs: all xn
    'xs5_a-s5-c1', 'xn5_a-sx-c1', // unsettled (5 > 4): xn even though compacted
    'xn6_a-sx-c1', 'xn7_a-sx-c1',
    'xn9_a-sx-c1', // beyond writeEpoch+1: kopia would not look; read anyway
  ])
  const selection = selectEpochIndexes(listing)
  t.equal(selection.writeEpoch, 6)
  t.equal(selection.deletionWatermark, 1800000000)
  t.same(ids(selection.active), ['xr0_2_aa-s1-c2', 'xr0_2_bb-s1-c2', 'xs3_a-s3-c1', 'xn4_a-sx-c1', 'xn4_b-sy-c1', 'xn5_a-sx-c1', 'xn6_a-sx-c1', 'xn7_a-sx-c1', 'xn9_a-sx-c1'])
  t.same(ids(selectEpochIndexes(named(['xn0_a-s-c1', 'xs0_a-s1-c1'])).active), ['xn0_a-s-c1'], 'write epoch 0: nothing is settled')
  t.same(selectEpochIndexes([]).active, [])
  t.same(ids(selectEpochIndexes(named(['xe999999999999', 'xn0_a-s-c1', 'xn999999999999999_b-s-c1'])).active), ['xn0_a-s-c1', 'xn999999999999999_b-s-c1'], 'absurd epoch numbers: no endless walk')
})

t.test('legacy selection: a log counts only with all outputs present', async (t) => {
  const listing = named(['n1', 'n2', 'n3', 'n4', 'n5'])
  const active = selectLegacyIndexes(listing, [
    { inputs: ['n1', 'n2'], outputs: ['n3'] }, // valid: n1, n2 superseded
    { inputs: ['n4'], outputs: ['n9'] }, // output missing: ignored
    { inputs: ['n3'], outputs: ['n5'] }, // chained: n3 superseded by n5
  ])
  t.same(ids(active), ['n4', 'n5'])
  const log = parseCompactionLog(Buffer.from(JSON.stringify({ inputMetadata: [{ id: 'n1', length: 5, timestamp: '2026-01-01T00:00:00Z' }], outputMetadata: [{ id: 'n3' }] })), { location: 'l', blobId: 'm1' })
  t.same(log, { inputs: ['n1'], outputs: ['n3'] })
  t.throws(() => parseCompactionLog(Buffer.from('nope'), { location: 'l', blobId: 'm1' }), { code: 'corrupt', message: /m1: compaction log is not JSON/ })
  t.throws(() => parseCompactionLog(Buffer.from('{"inputMetadata":[{}]}'), { location: 'l', blobId: 'm1' }), { code: 'corrupt' })
})
