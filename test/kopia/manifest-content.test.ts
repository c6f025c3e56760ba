// The incremental manifest content decoder (ManifestContentParser): the same records and the same
// failures whatever the chunking, and exactly the validity of one JSON.parse of the whole text.
import t from 'tap'
import { type ManifestRecord, ManifestContentParser, parseManifestContent } from '../../src/kopia/manifest-content.ts'
import { snapshotEntry, tombstone } from '../support/kopia-manifests.ts'

const ctx = { location: '/repo/', blobId: 'qpack (content m1)' }

/** Parses `text` pushed in the pieces cut at `cuts` (byte offsets, ascending). */
function parseInPieces(text: Buffer, cuts: readonly number[]): ManifestRecord[] {
  const parser = new ManifestContentParser(ctx)
  let from = 0
  for (const cut of [...cuts, text.length]) {
    parser.push(text.subarray(from, cut))
    from = cut
  }
  return parser.end()
}

/** The failure message of parsing `text` pushed in `cuts` pieces, or 'ok'. */
function outcome(text: Buffer, cuts: readonly number[] = []): string {
  try {
    parseInPieces(text, cuts)
    return 'ok'
  } catch (error) {
    if (!(error instanceof Error) || !('code' in error) || error.code !== 'corrupt') throw error
    return error.message
  }
}

const tricky = [
  'brackets ] } [ { and a fake boundary },{"id":"x"} in a string',
  'escaped quotes \\" and "quoted" and a backslash at the end \\',
  'unicode: é ü 日本語 🚀 and an escaped \u0022 quote',
]
const spec = (n: number, description = '') => ({ username: `app-${n}`, hostname: 'ns', path: `/data/${tricky[n % tricky.length]}`, startTime: `2026-01-0${1 + (n % 9)}T00:00:00Z`, description })
const entries = [
  ...Array.from({ length: 9 }, (_, n) => snapshotEntry(spec(n, tricky[(n + 1) % tricky.length]), '2026-02-01T00:00:00Z', `id${n}`)),
  tombstone('id3', '2026-03-01T00:00:00Z'),
  { id: 'pol', labels: { type: 'policy', hostname: 'ns', 'odd]key': '},{' }, modified: '2026-01-01T00:00:00Z', data: { nested: [{ id: 'a' }, { id: 'b' }], s: '\\' } },
]
const content = Buffer.from(JSON.stringify({ entries }))

t.test('chunk boundaries anywhere give the same records as the whole content', async (t) => {
  const whole = parseManifestContent(content, ctx)
  t.equal(whole.length, entries.length)
  t.same(whole.map((r) => r.id), entries.map((e) => e.id))
  t.equal(whole[0]?.snapshot?.path, `/data/${tricky[0]}`, 'strings keep their brackets, escapes and unicode')
  t.equal(whole[2]?.snapshot?.path, `/data/${tricky[2]}`)
  t.same(whole[10]?.labels, { type: 'policy', hostname: 'ns', 'odd]key': '},{' })
  const three = Buffer.from(JSON.stringify({ entries: [entries[1], entries[2], entries[10]] }))
  const expected = JSON.stringify(parseManifestContent(three, ctx))
  let differing = 0
  for (let cut = 1; cut < three.length; cut++) if (JSON.stringify(parseInPieces(three, [cut])) !== expected) differing++
  t.equal(differing, 0, `every one of ${three.length - 1} two-piece splits of three entries`)
  t.same(parseInPieces(content, Array.from({ length: content.length - 1 }, (_, i) => i + 1)), whole, 'one byte at a time')
  const multiByte = content.indexOf(Buffer.from('日'))
  t.same(parseInPieces(content, [multiByte + 1, multiByte + 2]), whole, 'a multi-byte character split across three pieces')
  const backslash = content.indexOf(Buffer.from('\\\\"'))
  t.same(parseInPieces(content, [backslash + 1, backslash + 2]), whole, 'a piece ending with a backslash, the next with the byte it escapes')
})

t.test('large contents: entries across chunk boundaries and batches', async (t) => {
  const many = Array.from({ length: 3500 }, (_, n) => snapshotEntry(spec(n, tricky[n % 3]!.repeat(1 + (n % 5))), '2026-02-01T00:00:00Z', `m${n}`))
  const big = Buffer.from(JSON.stringify({ entries: many }))
  t.ok(big.length > 2 << 20, `${big.length} bytes: many batches`)
  const whole = parseManifestContent(big, ctx)
  t.same(whole.map((r) => r.id), many.map((e) => e.id))
  const cuts = Array.from({ length: Math.floor(big.length / 65_521) }, (_, i) => (i + 1) * 65_521)
  t.same(parseInPieces(big, cuts), whole, '64 KiB pieces (odd size, so cuts land everywhere)')
  const spaced = Buffer.from(JSON.stringify({ entries: many }, null, 1))
  t.same(parseInPieces(spaced, cuts), whole, 'indented JSON (no compact `},{` between entries) goes through the byte scan')
})

t.test("kopia's structure rules and their messages", async (t) => {
  const one = JSON.stringify(entries[0])
  t.equal(outcome(Buffer.from(`{"Entries":[${one}]}`)), 'ok', 'the key in any case')
  t.same(parseManifestContent(Buffer.from(`{"ENTRIES":[${one}]}`), ctx).map((r) => r.id), ['id0'])
  t.same(parseManifestContent(Buffer.from('{"entries":[]}'), ctx), [], 'empty entries')
  t.same(parseManifestContent(Buffer.from(' {}\n'), ctx), [], 'no entries key')
  t.same(parseManifestContent(Buffer.from(`{"x":{"entries":[1]},"entries":[${one}],"y":[{"entries":2}]}`), ctx).map((r) => r.id), ['id0'], 'nested entries keys do not count')
  const repeated = /qpack \(content m1\): manifest content is not valid: repeated entries field$/
  t.match(outcome(Buffer.from(`{"entries":[${one}],"entries":[${one}]}`)), repeated)
  t.match(outcome(Buffer.from(`{"entries":[${one}],"eNtRiEs":null}`)), repeated, 'repeated in another case, not an array')
  t.match(outcome(Buffer.from(`{"entries":[${one}],"entr\\u0069es":[]}`)), repeated, 'repeated with an escape in the key')
  t.match(outcome(Buffer.from('{"entries":{"a":1}}')), /: manifest content is not valid: entries is not an array$/)
  t.match(outcome(Buffer.from('{"entries":"x"}')), /entries is not an array/)
  t.match(outcome(Buffer.from('[]')), /: manifest content is not a JSON object$/)
  t.match(outcome(Buffer.from('"entries"')), /not a JSON object/)
  t.match(outcome(Buffer.from(`{"entries":[${one},{"id":"","modified":"2026-01-01T00:00:00Z"}]}`)), /: manifest entry #1 has no id or no valid modified time$/, 'malformed entry')
  t.match(outcome(Buffer.from('{"entries":[{"id":"a","modified":"soon"}]}')), /manifest entry #0 has no id or no valid modified time/)
  t.match(outcome(Buffer.from('{"entries":[7]}')), /manifest entry #0/, 'an entry that is not an object')
})

t.test('invalid JSON fails as a whole-text JSON.parse would, and before any other failure', async (t) => {
  const invalid = /: manifest content is not valid JSON: /
  for (const [name, text] of Object.entries({
    empty: '',
    whitespace: ' \n',
    truncated: content.subarray(0, content.length - 1).toString(),
    'truncated in an entry': content.subarray(0, 500).toString(),
    'trailing data': `${content.toString()}x`,
    'two objects': '{}{}',
    'bad scalar outside entries': `{"v":tru,"entries":[]}`,
    'bad scalar at the end': '{"v":1',
    'trailing comma': '{"entries":[{"id":"a"},]}',
    'bad key escape': '{"\\x":1}',
    'unquoted key': '{entries:[]}',
    'invalid non-object': '[1,]',
  })) t.match(outcome(Buffer.from(text)), invalid, name)
  // Priority: a later syntax error wins over an earlier malformed entry or repeated key, as with one parse.
  const malformedThenBroken = `{"entries":[{"id":"","modified":"x"}${',{"id":"a"}'.repeat(3)}],"z":[}`
  t.match(outcome(Buffer.from(malformedThenBroken)), invalid)
  t.match(outcome(Buffer.from('{"entries":[],"entries":[],"z":nul}')), invalid)
  t.match(outcome(Buffer.from('{"entries":null,"z":}')), invalid)
})

t.test('validity equals JSON.parse over every truncation and byte deletion of a content', async (t) => {
  const small = Buffer.from(JSON.stringify({ entries: [entries[0], entries[2], entries[10]] }))
  const jsonValid = (b: Buffer) => { try { JSON.parse(b.toString()); return true } catch { return false } }
  const parserValid = (b: Buffer, cuts: number[]) => !/not valid JSON/.test(outcome(b, cuts))
  let mismatches = 0
  const variants: Buffer[] = []
  for (let i = 0; i < small.length; i++) {
    variants.push(small.subarray(0, i))
    variants.push(Buffer.concat([small.subarray(0, i), small.subarray(i + 1)]))
  }
  for (const variant of variants) {
    const cuts = [Math.floor(variant.length / 3), Math.floor((2 * variant.length) / 3)].filter((c) => c > 0)
    if (jsonValid(variant) !== parserValid(variant, cuts)) mismatches++
  }
  t.equal(mismatches, 0, `${variants.length} variants`)
})
