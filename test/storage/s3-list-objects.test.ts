// The lean ListObjectsV2 reader against the SDK's own deserializer: for any listing S3 could send
// (keys of any XML-legal characters, escaped as entities, character references or CDATA, pretty
// printed or not, with elements the reader skips), both read the same keys, sizes, times, common
// prefixes and continuation; anything that is not a listing is refused (undefined), never misread.
import { Readable } from 'node:stream'
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import fc from 'fast-check'
import t from 'tap'
import { type ListObjectsV2Page, parseListObjectsV2 } from '../../src/storage/s3-list-objects.ts'

/** An S3 client whose every request is answered 200 with `body`: the SDK's deserializer as an oracle. */
function sdkReading(body: string): Promise<ListObjectsV2Page> {
  const handler = {
    handle: () => Promise.resolve({ response: { statusCode: 200, headers: { 'content-type': 'application/xml' }, body: Readable.from([Buffer.from(body)]) } }),
    updateHttpClientConfig: () => {},
    httpHandlerConfigs: () => ({}),
  }
  const client = new S3Client({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9', forcePathStyle: true, credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1, requestHandler: handler })
  return client.send(new ListObjectsV2Command({ Bucket: 'bucket' })).then((answer) => ({
    objects: (answer.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [{ key: o.Key, size: o.Size ?? 0, modifiedMs: o.LastModified?.getTime() ?? 0 }])),
    prefixes: (answer.CommonPrefixes ?? []).flatMap((p) => (p.Prefix === undefined ? [] : [p.Prefix])),
    truncated: answer.IsTruncated === true,
    nextContinuationToken: answer.NextContinuationToken,
  }))
}

const S3_PROLOG = '<?xml version="1.0" encoding="UTF-8"?>\n'
const S3_ROOT = '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'

/** Escapes text as S3 and s3rver do, or in one of the other ways XML allows. */
type Escape = 'entities' | 'numeric' | 'cdata'
function escapeText(text: string, how: Escape): string {
  if (how === 'cdata') return `<![CDATA[${text.replaceAll(']]>', ']]]]><![CDATA[>')}]]>`
  if (how === 'numeric') return text.replace(/[&<>"'\r]/g, (c) => `&#${c.charCodeAt(0)};`)
  return text.replace(/[&<>"'\r]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\r': '&#xD;' })[c]!)
}

t.test('reads what S3 sends: keys with entities, sizes, times, prefixes, continuation', async (t) => {
  const xml = `${S3_PROLOG}${S3_ROOT}<Name>b</Name><Prefix>a&amp;</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>`
    + '<Contents><Key>a&amp;b &lt;c&gt; &#x27;d&#x27; &quot;e&quot; é 日本 x+y%20z</Key><LastModified>2026-12-01T01:12:48.000Z</LastModified><ETag>&quot;9dd4e461268c8034f5c8564e155c67a6&quot;</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>'
    + '<Contents><Key>a&amp;z</Key><LastModified>2024-02-29T23:59:59Z</LastModified><Owner><ID>x</ID><DisplayName>y</DisplayName></Owner><Size>12345678901</Size></Contents>'
    + '<CommonPrefixes><Prefix>a&amp;dir/</Prefix></CommonPrefixes><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken></ListBucketResult>'
  const page = parseListObjectsV2(xml)
  t.same(page, {
    objects: [
      { key: 'a&b <c> \'d\' "e" é 日本 x+y%20z', size: 1, modifiedMs: Date.parse('2026-12-01T01:12:48.000Z') },
      { key: 'a&z', size: 12345678901, modifiedMs: Date.parse('2024-02-29T23:59:59Z') },
    ],
    prefixes: ['a&dir/'],
    truncated: true,
    nextContinuationToken: '1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=',
  })
  t.same(page, await sdkReading(xml), 'as the SDK reads it')
})

t.test('an empty listing, self-closed or not, and keys with spaces kept as they are', async (t) => {
  t.same(parseListObjectsV2(`${S3_PROLOG}${S3_ROOT}<Name>b</Name><Prefix></Prefix><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>`), { objects: [], prefixes: [], truncated: false, nextContinuationToken: undefined })
  t.same(parseListObjectsV2('<ListBucketResult/>'), { objects: [], prefixes: [], truncated: false, nextContinuationToken: undefined })
  const spaced = `${S3_ROOT}\n  <Contents>\n    <Key>  two  spaces </Key>\n    <Size>3</Size>\n  </Contents>\n</ListBucketResult>\n`
  t.same(parseListObjectsV2(spaced)?.objects, [{ key: '  two  spaces ', size: 3, modifiedMs: 0 }], 'pretty printed; no LastModified reads as 0, as the SDK path does')
  t.same(parseListObjectsV2(spaced), await sdkReading(spaced))
})

t.test('times: RFC 3339 with a zone, as the SDK reads them', async (t) => {
  for (const time of ['2026-12-01T01:12:48.000Z', '2026-12-01T01:12:48Z', '1970-01-01T00:00:00.000Z', '2024-02-29T12:00:00.999Z', '2026-01-31T23:59:59.000Z', '2026-12-01T01:12:48.5Z', '2026-12-01T03:12:48.000+02:00', '2100-02-28T00:00:00Z', '9999-12-31T23:59:59.999Z']) {
    const xml = `${S3_ROOT}<Contents><Key>k</Key><LastModified>${time}</LastModified></Contents></ListBucketResult>`
    t.equal(parseListObjectsV2(xml)?.objects[0]?.modifiedMs, Date.parse(time), time)
    t.same(parseListObjectsV2(xml), await sdkReading(xml), `${time} as the SDK reads it`)
  }
  fc.assert(fc.property(fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }), fc.boolean(), (date, withMillis) => {
    const text = withMillis ? date.toISOString() : date.toISOString().replace(/\.\d{3}Z$/, 'Z')
    const read = parseListObjectsV2(`${S3_ROOT}<Contents><Key>k</Key><LastModified>${text}</LastModified></Contents></ListBucketResult>`)
    return read?.objects[0]?.modifiedMs === Date.parse(text)
  }), { numRuns: 2000 })
})

t.test('anything but a listing is refused, not misread', async (t) => {
  const refused = {
    'an S3 error sent with a 200': '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>',
    'an empty body': '',
    'a truncated body': `${S3_ROOT}<Contents><Key>a</Key><Size>1</Si`,
    'no end tag': `${S3_ROOT}<Contents><Key>a</Key></Contents>`,
    'mismatched end tag': `${S3_ROOT}<Contents><Key>a</Kez></Contents></ListBucketResult>`,
    'an unknown entity': `${S3_ROOT}<Contents><Key>a&nbsp;b</Key></Contents></ListBucketResult>`,
    'a bare ampersand': `${S3_ROOT}<Contents><Key>a & b</Key></Contents></ListBucketResult>`,
    'a reference to no character': `${S3_ROOT}<Contents><Key>a&#0;b</Key></Contents></ListBucketResult>`,
    'a surrogate reference': `${S3_ROOT}<Contents><Key>a&#xD800;b</Key></Contents></ListBucketResult>`,
    'a size that is not a number': `${S3_ROOT}<Contents><Key>a</Key><Size>big</Size></Contents></ListBucketResult>`,
    'a negative size': `${S3_ROOT}<Contents><Key>a</Key><Size>-1</Size></Contents></ListBucketResult>`,
    'a date that is not one': `${S3_ROOT}<Contents><Key>a</Key><LastModified>yesterday</LastModified></Contents></ListBucketResult>`,
    // Forms S3 never writes are not guessed at (the SDK refuses them too); without a zone Date.parse would read local time.
    'a date without a zone': `${S3_ROOT}<Contents><Key>a</Key><LastModified>2026-12-01T01:12:48</LastModified></Contents></ListBucketResult>`,
    'an RFC 1123 date': `${S3_ROOT}<Contents><Key>a</Key><LastModified>Tue, 01 Dec 2026 01:12:48 GMT</LastModified></Contents></ListBucketResult>`,
    'a bare year': `${S3_ROOT}<Contents><Key>a</Key><LastModified>2026</LastModified></Contents></ListBucketResult>`,
    // Read as false, these would end a listing after its first page.
    'IsTruncated in capitals': `${S3_ROOT}<IsTruncated>TRUE</IsTruncated><NextContinuationToken>t</NextContinuationToken></ListBucketResult>`,
    'IsTruncated neither true nor false': `${S3_ROOT}<IsTruncated>1</IsTruncated></ListBucketResult>`,
    'IsTruncated twice': `${S3_ROOT}<IsTruncated>true</IsTruncated><IsTruncated>false</IsTruncated></ListBucketResult>`,
    'a Key twice in one Contents': `${S3_ROOT}<Contents><Key>a</Key><Key>b</Key></Contents></ListBucketResult>`,
    'a Prefix twice in one CommonPrefixes': `${S3_ROOT}<CommonPrefixes><Prefix>a/</Prefix><Prefix>b/</Prefix></CommonPrefixes></ListBucketResult>`,
    'NextContinuationToken twice': `${S3_ROOT}<IsTruncated>true</IsTruncated><NextContinuationToken>a</NextContinuationToken><NextContinuationToken>b</NextContinuationToken></ListBucketResult>`,
    'an element inside a key': `${S3_ROOT}<Contents><Key>a<b/></Key></Contents></ListBucketResult>`,
    'text between elements': `${S3_ROOT}stray<Contents><Key>a</Key></Contents></ListBucketResult>`,
    'a DOCTYPE': `<!DOCTYPE x [<!ENTITY e "boom">]>${S3_ROOT}<Contents><Key>&e;</Key></Contents></ListBucketResult>`,
    'HTML from a proxy': '<html><body>502 Bad Gateway</body></html>',
    'deep nesting': `${S3_ROOT}<Contents>${'<a>'.repeat(200_000)}${'</a>'.repeat(200_000)}<Key>a</Key></Contents></ListBucketResult>`,
  }
  for (const [what, body] of Object.entries(refused)) t.equal(parseListObjectsV2(body), undefined, what)
})

t.test('comments, processing instructions, CDATA and CRLF line ends, as XML reads them', async (t) => {
  const xml = `<?xml version="1.0"?>\r\n<!-- a listing -->\r\n${S3_ROOT}<!-- c --><Contents><Key>a<!-- in a key -->b<![CDATA[<&>]]>c</Key><?pi x?><Size>1</Size></Contents>`
    + '<Contents><Key>line\r\nend&#13;&#10;</Key></Contents></ListBucketResult>'
  const page = parseListObjectsV2(xml)
  t.same(page?.objects.map((o) => o.key), ['ab<&>c', 'line\nend\r\n'])
  t.same(page, await sdkReading(xml), 'as the SDK reads it')
})

// Any character XML 1.0 can carry: no C0 controls but tab, CR and LF, no lone surrogates, no U+FFFE/U+FFFF.
const xmlChar = fc.oneof(
  fc.constantFrom('&', '<', '>', '"', "'", ' ', '\t', '/', '%', '+', ']]>', 'é', '日', '😀', '\u00a0'),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 3 }),
).filter((s) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/.test(s))
// A key the SDK's reader keeps as is: it reads whitespace-only text holding a newline as empty, and a
// numeric reference above U+FFFF as a lone UTF-16 unit (so the generated escapes never use one).
const key = fc.array(xmlChar, { minLength: 1, maxLength: 12 }).map((parts) => parts.join('').replaceAll('\r', '')).filter((k) => !(k.trim() === '' && k.includes('\n')))
const escape = fc.constantFrom<Escape>('entities', 'numeric', 'cdata')

t.test('property: any listing reads as the SDK reads it', async (t) => {
  const listing = fc.record({
    objects: fc.array(fc.record({
      key, escape, size: fc.nat({ max: 2 ** 40 }), time: fc.date({ min: new Date('1990-01-01T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true }),
      owner: fc.boolean(), etag: fc.boolean(),
    }), { maxLength: 8 }),
    prefixes: fc.array(fc.record({ key, escape }), { maxLength: 4 }),
    truncated: fc.boolean(),
    token: fc.option(fc.base64String({ minLength: 4, maxLength: 40 }), { nil: undefined }),
    pretty: fc.boolean(),
  })
  await fc.assert(fc.asyncProperty(listing, async (l) => {
    const nl = l.pretty ? '\n  ' : ''
    const xml = S3_PROLOG + S3_ROOT + nl + '<Name>bucket</Name>' + nl + `<IsTruncated>${l.truncated}</IsTruncated>`
      + l.objects.map((o) => `${nl}<Contents>${nl}<Key>${escapeText(o.key, o.escape)}</Key>${nl}<LastModified>${o.time.toISOString()}</LastModified>`
        + (o.etag ? `${nl}<ETag>&quot;abc&quot;</ETag>` : '') + `${nl}<Size>${o.size}</Size>`
        + (o.owner ? `${nl}<Owner><ID>id</ID><DisplayName>${escapeText('me & you', 'entities')}</DisplayName></Owner>` : '') + `${nl}</Contents>`).join('')
      + l.prefixes.map((p) => `${nl}<CommonPrefixes><Prefix>${escapeText(p.key, p.escape)}</Prefix></CommonPrefixes>`).join('')
      + (l.token !== undefined ? `${nl}<NextContinuationToken>${l.token}</NextContinuationToken>` : '') + `\n</ListBucketResult>`
    const ours = parseListObjectsV2(xml)
    t.ok(ours !== undefined, 'read')
    t.same(ours?.objects.map((o) => o.key), l.objects.map((o) => o.key), 'keys as written')
    t.same(ours, await sdkReading(xml), 'as the SDK reads it')
  }), { numRuns: 300 })
})
