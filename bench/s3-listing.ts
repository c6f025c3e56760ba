// `npm run bench` (S3 listing part): client CPU per ListObjectsV2 (issue 14 item 4, "our CPU per
// listing within 1.5x of a signed bare request"), against a real S3 server (s3rver in its own
// process, objects on tmpfs), for one prefix of 50 keys and one of 1,000 (a full page):
// - ours: S3BlobStore.listPage (direct once the SDK has shown the route, src/storage/s3-direct-listing.ts);
// - SDK: the stock `client.send(new ListObjectsV2Command(...))`, configured as our client is;
// - bare: the reference, a request signed with @smithy/signature-v4 sent over a node:http keep-alive
//   agent, the body read as text and not parsed.
// CPU is process.cpuUsage (user + system, every thread) around N sequential listings, after a
// warm-up, in rounds that rotate the order of the three; figures are medians over rounds, the ratio
// is the median of each round's ours / bare. The 50-key ratio is recorded as a goal row
// (bench/goal-rows.ts). Flags: --quick (fewer rounds and listings), --rounds N, --listings N (per
// variant and round, 50 keys; a twentieth of it for 1,000 keys).
import { createHash, createHmac } from 'node:crypto'
import { existsSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { parseArgs } from 'node:util'
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import { SignatureV4 } from '@smithy/signature-v4'
import { s3BlobStore } from '../src/storage/s3-store.ts'
import { LocalS3, S3RVER_KEY } from '../test/support/s3-server.ts'
import { metText, recordGoal } from './goal-rows.ts'
import { fmt, median, pad, padLeft, positive } from './stats.ts'

const GOAL_RATIO = 1.5
const BUCKET = 'listing-bench'
const REGION = 'us-east-1'

const { values } = parseArgs({ options: {
  quick: { type: 'boolean', default: false },
  rounds: { type: 'string' },
  listings: { type: 'string' },
} })
const ROUNDS = positive('rounds', values.rounds, values.quick ? 3 : 7)
const LISTINGS = positive('listings', values.listings, values.quick ? 40 : 80)

function bytes(data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof data === 'string') return data
  return ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data)
}

/** node:crypto's SHA-256 in the shape @smithy/signature-v4 takes (an HMAC when given a secret). */
class Sha256 {
  readonly #hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret))
  }

  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(bytes(data))
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()))
  }
}

/** The reference: ListObjectsV2 signed with @smithy/signature-v4 over a keep-alive agent, body as text. */
function bareLister(s3: LocalS3): { list(prefix: string): Promise<string>; close(): void } {
  const signer = new SignatureV4({ credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY }, region: REGION, service: 's3', sha256: Sha256, uriEscapePath: false })
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  const host = `127.0.0.1:${s3.port}`
  return {
    async list(prefix) {
      const signed = await signer.sign({ method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port: s3.port, path: `/${BUCKET}/`, query: { 'list-type': '2', prefix }, headers: { host } })
      const query = new URLSearchParams({ 'list-type': '2', prefix }).toString()
      return new Promise((resolve, reject) => {
        const req = request({ agent, method: 'GET', host: '127.0.0.1', port: s3.port, path: `/${BUCKET}/?${query}`, headers: signed.headers }, (res) => {
          res.setEncoding('utf8')
          let body = ''
          res.on('data', (chunk: string) => { body += chunk })
          res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}: ${body}`))))
          res.on('error', reject)
        })
        req.on('error', reject)
        req.end()
      })
    },
    close: () => agent.destroy(),
  }
}

/** Client CPU in ms per call of `list` over `count` sequential calls. */
async function cpuPerListing(count: number, list: () => Promise<unknown>): Promise<number> {
  const before = process.cpuUsage()
  for (let i = 0; i < count; i++) await list()
  const used = process.cpuUsage(before)
  return (used.user + used.system) / 1000 / count
}

interface Figures { readonly ours: number; readonly sdk: number; readonly bare: number; readonly ratio: number }

/** Rounds of `count` listings of `prefix` per variant, rotating which goes first; medians. */
async function measure(variants: Record<'ours' | 'sdk' | 'bare', () => Promise<unknown>>, count: number): Promise<Figures> {
  const names = ['ours', 'sdk', 'bare'] as const
  for (const name of names) await cpuPerListing(Math.max(5, Math.ceil(count / 4)), variants[name])
  const samples: Record<(typeof names)[number], number[]> = { ours: [], sdk: [], bare: [] }
  const ratios: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(round + i) % names.length]!
      samples[name].push(await cpuPerListing(count, variants[name]))
    }
    ratios.push(samples.ours[round]! / samples.bare[round]!)
  }
  return { ours: median(samples.ours), sdk: median(samples.sdk), bare: median(samples.bare), ratio: median(ratios) }
}

const s3 = await LocalS3.start(existsSync('/dev/shm') ? '/dev/shm' : tmpdir())
const location = s3.location(BUCKET)
const sdk = new S3Client({
  endpoint: s3.endpoint, region: REGION, forcePathStyle: true, credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY },
  requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED', maxAttempts: location.maxAttempts,
  requestHandler: { requestTimeout: 5000, httpAgent: { keepAlive: true, maxSockets: 64 } },
})
const bare = bareLister(s3)
try {
  await s3.createBucket(BUCKET)
  const sets = [{ keys: 50, prefix: 'ns/small/snapshots/' }, { keys: 1000, prefix: 'ns/large/snapshots/' }]
  for (const { keys, prefix } of sets) {
    // Restic-like names: 64 hex digits.
    await s3.writeObjects(BUCKET, Array.from({ length: keys }, (_, i) => [`${prefix}${createHash('sha256').update(String(i)).digest('hex')}`, 'x'] as const))
  }
  const store = s3BlobStore(location)
  console.log(`S3 listing bench: client CPU per ListObjectsV2 against s3rver on loopback, ${ROUNDS} rounds of ${LISTINGS} listings (50 keys) / ${Math.ceil(LISTINGS / 20)} (1,000 keys) per variant`)
  const rows: Array<{ keys: number; figures: Figures }> = []
  for (const { keys, prefix } of sets) {
    // The three read the same listing: ours as the SDK reads it, the reference's body holds every key.
    const ours = await store.listPage(prefix)
    const stock = await sdk.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }))
    const text = await bare.list(prefix)
    const stockKeys = (stock.Contents ?? []).map((o) => o.Key)
    if (ours.blobs.length !== keys || JSON.stringify(ours.blobs.map((b) => b.key)) !== JSON.stringify(stockKeys) || !ours.blobs.every((b) => text.includes(b.key))) {
      throw new Error(`the listings of ${prefix} differ: ours ${ours.blobs.length} keys, SDK ${stockKeys.length}`)
    }
    const figures = await measure({
      ours: () => store.listPage(prefix),
      sdk: () => sdk.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix })),
      bare: () => bare.list(prefix),
    }, keys >= 1000 ? Math.ceil(LISTINGS / 20) : LISTINGS)
    rows.push({ keys, figures })
  }
  console.log('')
  console.log(`${pad('keys per listing', 18)}${padLeft('ours ms', 9)}${padLeft('SDK ms', 9)}${padLeft('bare ms', 9)}${padLeft('ours/bare', 11)}${padLeft('SDK/bare', 10)}  goal`)
  for (const { keys, figures } of rows) {
    const goal = keys === 50 ? `ours/bare <= ${GOAL_RATIO}x: ${metText(figures.ratio <= GOAL_RATIO)}` : '(no goal: a full page)'
    console.log(`${pad(String(keys), 18)}${padLeft(fmt(figures.ours), 9)}${padLeft(fmt(figures.sdk), 9)}${padLeft(fmt(figures.bare), 9)}${padLeft(`${fmt(figures.ratio)}x`, 11)}${padLeft(`${fmt(figures.sdk / figures.bare)}x`, 10)}  ${goal}`)
  }
  const small = rows.find((r) => r.keys === 50)!.figures
  recordGoal({
    what: 'S3 client CPU per listing (50 keys), ours / a signed bare request',
    now: `${fmt(small.ratio)}x (${fmt(small.ours)} / ${fmt(small.bare)} ms; stock SDK ${fmt(small.sdk)} ms)`,
    goal: `<= ${GOAL_RATIO}x`,
    met: small.ratio <= GOAL_RATIO,
    by: 'bench/s3-listing.ts',
  })
} finally {
  bare.close()
  sdk.destroy()
  await s3.close()
}
