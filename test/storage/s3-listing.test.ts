// S3BlobStore.listPage's direct path (src/storage/s3-direct-listing.ts) against a real S3 server
// (s3rver) behind a recording proxy: once the SDK has listed, listings go direct and read exactly what
// the SDK reads; anything but a readable 2xx is answered by the SDK (its error mapping and retries);
// a direct request refused where the SDK succeeds turns the direct path off.
import { type IncomingMessage, type Server, createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import t from 'tap'
import type { S3LocationConfig } from '../../src/config/schema.ts'
import { BlobStoreError, listAll } from '../../src/storage/blob-store.ts'
import { s3BlobStore } from '../../src/storage/s3-store.ts'
import { LocalS3, S3RVER_KEY } from '../support/s3-server.ts'

interface Seen { readonly direct: boolean; readonly url: string }
/** A canned answer instead of S3's; 'hang' never answers. */
type Canned = { readonly status: number; readonly body: string } | 'hang' | undefined

/** An HTTP proxy in front of s3rver that records each request (direct: not sent by the SDK) and can answer instead. */
class RecordingProxy {
  readonly seen: Seen[] = []
  answer: (direct: boolean) => Canned = () => undefined
  readonly #server: Server
  readonly #target: LocalS3

  private constructor(target: LocalS3) {
    this.#target = target
    this.#server = createServer((req, res) => {
      // The SDK marks every request with an invocation id; the direct path sends only what it signs.
      const direct = req.headers['amz-sdk-invocation-id'] === undefined
      this.seen.push({ direct, url: req.url ?? '' })
      const canned = this.answer(direct)
      if (canned === 'hang') return
      if (canned !== undefined) {
        req.resume()
        res.writeHead(canned.status, { 'content-type': 'application/xml' }).end(canned.body)
        return
      }
      this.#forward(req, (status, headers, body) => { res.writeHead(status, headers); body.pipe(res) }, () => res.destroy())
    })
  }

  static async start(target: LocalS3): Promise<RecordingProxy> {
    const proxy = new RecordingProxy(target)
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve))
    return proxy
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`
  }

  /** How many requests of each kind since `from`. */
  counts(from = 0): { direct: number; sdk: number } {
    const since = this.seen.slice(from)
    return { direct: since.filter((s) => s.direct).length, sdk: since.filter((s) => !s.direct).length }
  }

  #forward(req: IncomingMessage, answer: (status: number, headers: IncomingMessage['headers'], body: IncomingMessage) => void, fail: () => void): void {
    const upstream = request({ host: '127.0.0.1', port: this.#target.port, method: req.method, path: req.url, headers: req.headers }, (res) => answer(res.statusCode ?? 502, res.headers, res))
    upstream.on('error', fail)
    req.pipe(upstream)
  }

  close(): Promise<void> {
    this.#server.closeAllConnections()
    return new Promise((resolve) => this.#server.close(() => resolve()))
  }
}

const s3 = await LocalS3.start()
t.teardown(() => s3.close())
const proxy = await RecordingProxy.start(s3)
t.teardown(() => proxy.close())
t.afterEach(() => { proxy.answer = () => undefined })

/** A location in s3rver reached through the proxy. */
const viaProxy = (bucket: string, overrides: Partial<S3LocationConfig> = {}): S3LocationConfig => s3.location(bucket, { endpoint: proxy.endpoint, ...overrides })

/** The stock SDK's reading of a listing, straight to s3rver: the reference for ours. */
async function sdkListing(bucket: string, prefix: string, delimiter?: string) {
  const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY } })
  try {
    const answer = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(delimiter ? { Delimiter: delimiter } : {}) }))
    return {
      blobs: (answer.Contents ?? []).map((o) => ({ key: o.Key ?? '', size: o.Size ?? 0, modifiedMs: o.LastModified?.getTime() ?? 0 })),
      prefixes: (answer.CommonPrefixes ?? []).map((p) => p.Prefix ?? ''),
    }
  } finally {
    client.destroy()
  }
}

const SPECIAL_KEYS = ['dir/a&b', 'dir/<tag>', "dir/it's", 'dir/"quoted"', 'dir/日本語/ファイル', 'dir/with  spaces ', 'dir/emoji 😀', 'dir/plus+percent%20', 'dir/semi;colon&amp;', 'dir/sub/x', 'dir/sub/y']

t.test('after the SDK has listed once, listings go direct and read what the SDK reads', async (t) => {
  await s3.createBucket('special')
  for (const [i, key] of [...SPECIAL_KEYS, 'other/z'].entries()) await s3.put('special', key, 'x'.repeat(i + 1))
  const store = s3BlobStore(viaProxy('special'))
  const from = proxy.seen.length
  const first = await store.listPage('dir/')
  t.same(proxy.counts(from), { direct: 0, sdk: 1 }, 'the first listing goes through the SDK')
  const second = await store.listPage('dir/')
  t.same(proxy.counts(from), { direct: 1, sdk: 1 }, 'the next one goes direct')
  t.same(second, first, 'and reads the same page')
  t.same(second.blobs.map((b) => b.key).sort(), SPECIAL_KEYS.slice().sort(), 'every key decoded')
  t.same(second, await sdkListing('special', 'dir/'), 'keys, sizes and LastModified as the stock SDK reads them')

  const rolled = await store.listPage('dir/', { delimiter: '/' })
  t.same(rolled, await sdkListing('special', 'dir/', '/'), 'CommonPrefixes with a delimiter, as the SDK reads them')
  t.same(rolled.prefixes, ['dir/sub/', 'dir/日本語/'])
  t.same(await store.listPage('nothing/'), { blobs: [], prefixes: [] }, 'an empty listing')
  const sub = store.sub('dir/')
  t.same((await sub.listPage('sub/')).blobs.map((b) => b.key), ['sub/x', 'sub/y'], 'a sub-store shares the route, keys relative to it')
  t.same(proxy.counts(from), { direct: 4, sdk: 1 }, 'all of them direct')
})

t.test('pages through more than 1000 keys and at a chosen size, direct', async (t) => {
  await s3.createBucket('many-keys')
  const keys = Array.from({ length: 1205 }, (_, i) => `ns/pvc/data/${String(i).padStart(5, '0')}`)
  await s3.writeObjects('many-keys', keys.map((k) => [k, 'x'] as const))
  const store = s3BlobStore(viaProxy('many-keys'))
  const from = proxy.seen.length
  t.same((await listAll(store, 'ns/pvc/data/')).blobs.map((b) => b.key), keys, 'every key once, in order')
  t.same(proxy.counts(from), { direct: 1, sdk: 1 }, 'the continuation went direct')
  const pages: number[] = []
  let next: string | undefined
  do {
    const page = await store.listPage('ns/pvc/', { maxKeys: 400, ...(next !== undefined ? { continuation: next } : {}) })
    pages.push(page.blobs.length)
    next = page.next
  } while (next !== undefined)
  t.same(pages, [400, 400, 400, 5], 'max-keys pages')
  t.same(proxy.counts(from), { direct: 5, sdk: 1 })
})

t.test('errors are the SDK\'s: a direct request that fails is sent again through the SDK', async (t) => {
  await s3.createBucket('errors')
  await s3.put('errors', 'a', 'x')
  const location = viaProxy('errors', { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'hunter2-secret' })
  const store = s3BlobStore(viaProxy('errors'))
  await store.listPage('')

  let from = proxy.seen.length
  proxy.answer = () => ({ status: 403, body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>' })
  const denied = await store.listPage('').then(() => null, (e: Error) => e)
  t.type(denied, BlobStoreError)
  t.match(denied?.message, /cannot list s3:\/\/errors\/ at http:\/\/127\.0\.0\.1:\d+: SignatureDoesNotMatch: check the access key and secret key/, 'mapped by the SDK')
  t.same(proxy.counts(from), { direct: 1, sdk: 1 }, 'one direct request, then the SDK')

  from = proxy.seen.length
  proxy.answer = () => ({ status: 200, body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>' })
  const inside200 = await store.listPage('').then(() => null, (e: Error) => e)
  t.match(inside200?.message, /cannot list s3:\/\/errors\/ at .*: InternalError/, 'an S3 error inside a 200 is the SDK\'s error too')
  t.same(proxy.counts(from), { direct: 1, sdk: 1 })

  proxy.answer = () => undefined
  t.same((await store.listPage('')).blobs.map((b) => b.key), ['a'], 'neither turned the direct path off')
  t.equal(proxy.seen.at(-1)?.direct, true)

  const wrongKey = await s3BlobStore(location).listPage('').then(() => null, (e: Error) => e)
  t.match(wrongKey?.message, /InvalidAccessKeyId: check the access key and secret key/, 'wrong keys: the SDK\'s answer, as before')
  t.notMatch(wrongKey?.message, /hunter2/, 'never a secret')

  await s3.createBucket('doomed')
  const doomed = s3BlobStore(viaProxy('doomed'))
  await doomed.listPage('')
  await doomed.listPage('')
  await rm(join(s3.directory, 'doomed'), { recursive: true, force: true })
  from = proxy.seen.length
  await t.rejects(doomed.listPage(''), /^bucket doomed does not exist at http:\/\/127\.0\.0\.1:\d+$/, 'a bucket gone after the route was learned')
  t.same(proxy.counts(from), { direct: 1, sdk: 1 })
})

t.test('a throttled direct request is retried by the SDK and keeps the direct path', async (t) => {
  await s3.createBucket('throttled')
  await s3.put('throttled', 'k', 'x')
  const store = s3BlobStore(viaProxy('throttled', { maxAttempts: 3 }))
  await store.listPage('')
  let from = proxy.seen.length
  let throttles = 2
  proxy.answer = () => (throttles-- > 0 ? { status: 503, body: '<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>' } : undefined)
  t.same((await store.listPage('')).blobs.map((b) => b.key), ['k'], 'the SDK\'s retry got the listing')
  t.same(proxy.counts(from), { direct: 1, sdk: 2 }, 'direct throttled, SDK throttled once, then answered')
  from = proxy.seen.length
  await store.listPage('')
  t.same(proxy.counts(from), { direct: 1, sdk: 0 }, 'still direct afterwards')
})

t.test('a direct request refused where the SDK succeeds turns the direct path off', async (t) => {
  await s3.createBucket('picky')
  await s3.put('picky', 'k', 'x')
  const store = s3BlobStore(viaProxy('picky'))
  await store.listPage('')
  // A server that wants something only the SDK sends (its user agent, say).
  proxy.answer = (direct) => (direct ? { status: 400, body: '<Error><Code>InvalidRequest</Code><Message>no</Message></Error>' } : undefined)
  const from = proxy.seen.length
  t.same((await store.listPage('')).blobs.map((b) => b.key), ['k'], 'the SDK answered')
  t.same(proxy.counts(from), { direct: 1, sdk: 1 })
  await store.listPage('')
  await store.listPage('')
  t.same(proxy.counts(from), { direct: 1, sdk: 3 }, 'from then on, only the SDK')
})

t.test('the caller\'s abort stops a direct listing without a second request', async (t) => {
  await s3.createBucket('slow')
  const store = s3BlobStore(viaProxy('slow'))
  await store.listPage('')
  proxy.answer = () => 'hang'
  const from = proxy.seen.length
  const error = await store.listPage('', { signal: AbortSignal.timeout(300) }).then(() => null, (e: Error) => e)
  t.type(error, BlobStoreError)
  t.match(error?.message, /cannot list s3:\/\/slow\/ at .*: no answer within/)
  t.same(proxy.counts(from), { direct: 1, sdk: 0 })
})
