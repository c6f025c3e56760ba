import t from 'tap'
import { type ManifestRecord, parseManifestContent } from '../../src/kopia/manifest-content.ts'
import { mergeManifests, summarizeSources } from '../../src/kopia/manifests.ts'
import { snapshotEntry, tombstone } from '../support/kopia-manifests.ts'
import vectors from '../fixtures/kopia/vectors.json' with { type: 'json' }

const ctx = { location: '/repo/', blobId: 'qpack (content m1)' }
const parse = (value: unknown) => parseManifestContent(Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)), ctx)

t.test("kopia's manifest entry sample", async (t) => {
  const [record] = parse(vectors.manifestEntrySample.json)
  t.equal(record?.id, '25905b6f222a153561543baea0a67043')
  t.same(record?.modified, { seconds: 1678999619, nanos: 707140000 })
  const [summary] = summarizeSources(record ? [record] : [])
  t.equal(summary && `${summary.username}@${summary.hostname}:${summary.path}`, vectors.manifestEntrySample.expectedSource)
  t.same(summary?.newest, { id: '25905b6f222a153561543baea0a67043', startTime: '2023-03-16T20:46:55.768430000Z', endTime: '2023-03-16T20:46:59.707064000Z', sizeBytes: 536927459, files: 18, dirs: 14 })
})

t.test('structure as kopia reads it: entries key in any case, once; other keys skipped', async (t) => {
  const entry = JSON.stringify(vectors.manifestEntrySample.json.entries[0])
  t.equal(parse(`{"Entries":[${entry}]}`).length, 1, 'case-insensitive key')
  t.equal(parse(`{"other":{"x":["]"]},"entries":[${entry},${entry}],"more":"}\\""}`).length, 2, 'other values skipped, strings with brackets too')
  t.equal(parse('{}').length, 0)
  t.equal(parse(' {"entries":[]}\n').length, 0)
  t.equal(parse(`{"a":[1,"]",{"b":"}"}], "entries" : [${entry}],"c":{"entries":[]}}`).length, 1, 'an entries key inside another value is not a repeated one')
  const nested = { entries: [{ ...vectors.manifestEntrySample.json.entries[0], data: { entries: ['a nested key of the same name'] } }] }
  t.equal(parse(nested).length, 1, 'a nested "entries" key is not a repeated one')
})

t.test('malformed contents fail as a whole (the failure classes of kopia serialized_test.go)', async (t) => {
  const entry = JSON.stringify(vectors.manifestEntrySample.json.entries[0])
  const bad: Record<string, string> = {
    RepeatedEntriesField: `{"entries":[${entry}],"entries":[${entry}]}`,
    MissingObjectStart: `"entries":[${entry}]}`,
    MissingObjectEnd: `{"entries":[${entry}]`,
    MissingArrayStart: `{"entries":${entry}]}`,
    MissingArrayEnd: `{"entries":[${entry}}`,
    MissingInnerObjectStart: `{"entries":["id":"x"}]}`,
    BadInnerObject: `{"entries":[{"id":}]}`,
    MissingInnerObjectEnd: `{"entries":[{"id":"x"]}`,
  }
  t.same(Object.keys(bad), vectors.manifestEntrySample.badInputNames)
  for (const [name, text] of Object.entries(bad)) t.throws(() => parse(text), { name: 'KopiaError', code: 'corrupt', message: /qpack \(content m1\)/ }, name)
  t.throws(() => parse('{"entries":null}'), { code: 'corrupt' }, 'null entries')
  t.throws(() => parse('{"entries":[{"id":"a","modified":"soon"}]}'), { code: 'corrupt', message: /no valid modified/ })
})

const spec = { username: 'u', hostname: 'h', path: '/p' }
const record = (entry: unknown): ManifestRecord => {
  const [r] = parse({ entries: [entry] })
  if (!r) throw new Error('no record')
  return r
}

t.test('merge: strictly newer modified wins, first seen on ties, tombstones remove', async (t) => {
  const a1 = record(snapshotEntry({ ...spec, startTime: '2026-01-01T00:00:00Z' }, '2026-01-01T00:00:00.1Z', 'a'))
  const a2 = record(snapshotEntry({ ...spec, startTime: '2026-01-02T00:00:00Z' }, '2026-01-01T00:00:00.10000001Z', 'a'))
  const a2tie = record(snapshotEntry({ ...spec, startTime: '2026-01-09T00:00:00Z' }, '2026-01-01T00:00:00.10000001Z', 'a'))
  t.equal(mergeManifests([[a2], [a1]]).get('a'), a2, 'older later does not win')
  t.equal(mergeManifests([[a1, a2]]).get('a'), a2, 'nanoseconds decide')
  t.equal(mergeManifests([[a2], [a2tie]]).get('a'), a2, 'first seen wins a tie')
  const gone = record(tombstone('a', '2026-01-01T00:00:01Z'))
  t.equal(mergeManifests([[a1], [gone], [a2]]).size, 0, 'a newer tombstone removes the id')
  const stale = record(tombstone('a', '2025-01-01T00:00:00Z'))
  t.equal(mergeManifests([[stale], [a1]]).get('a'), a1, 'an older tombstone does not')
})

t.test('summary: newest complete per source, deterministic ties, counts, missing sizes', async (t) => {
  const at = (id: string, start: string, extra: object = {}, modified = '2026-01-01T00:00:00Z') => record(snapshotEntry({ ...spec, startTime: start, ...extra }, modified, id))
  const sources = summarizeSources([
    at('b1', '2026-01-01T00:00:00Z', { endTime: '2026-01-01T01:00:00Z' }),
    at('b2', '2026-01-01T00:00:00Z', { endTime: '2026-01-01T02:00:00Z' }), // same start, later end
    at('b3', '2026-01-05T00:00:00Z', { incomplete: 'checkpoint' }),
    record({ id: 'p', labels: { type: 'policy' }, modified: '2026-01-01T00:00:00Z', data: {} }),
    record({ id: 'bare', labels: { type: 'snapshot', username: 'v', hostname: 'h', path: '/q' }, modified: '2026-01-01T00:00:00Z', data: { startTime: '2026-01-01T00:00:00Z', endTime: '2026-01-01T00:00:00Z' } }),
  ])
  t.same(sources.map((s) => [s.username, s.snapshots, s.newest.id]), [['u', 2, 'b2'], ['v', 1, 'bare']])
  t.same(sources[1]?.newest, { id: 'bare', startTime: '2026-01-01T00:00:00.000000000Z', endTime: '2026-01-01T00:00:00.000000000Z' }, 'no sizes when the payload has none')
  const tie = summarizeSources([at('x1', '2026-01-01T00:00:00Z'), at('x2', '2026-01-01T00:00:00Z')])
  t.equal(tie[0]?.newest.id, 'x2', 'full tie: greater id')
  const byModified = summarizeSources([at('y2', '2026-01-01T00:00:00Z', {}, '2026-01-01T00:00:00Z'), at('y1', '2026-01-01T00:00:00Z', {}, '2026-01-02T00:00:00Z')])
  t.equal(byModified[0]?.newest.id, 'y1', 'then the later modification')
})
