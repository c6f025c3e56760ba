// S3 as blob storage, tuned for the servers home labs run (Garage, MinIO, RustFS, Ceph RGW):
// path-style by default, checksums only when an operation requires them (those servers reject
// or mishandle the SDK's newer default checksum headers), every request bounded in time.
import type { S3Client } from '@aws-sdk/client-s3'
import type { S3LocationConfig } from '../config/schema.ts'
import { durationMs, MAX_TIMER_MS } from '../config/duration.ts'
import { type BlobInfo, BlobNotFoundError, type BlobPage, type BlobStore, BlobStoreError, type ListOptions } from './blob-store.ts'
import { s3Credentials } from './s3-credentials.ts'
import { DirectListing, type ListingQuery } from './s3-direct-listing.ts'
import type { ListedObject } from './s3-list-objects.ts'

type S3Sdk = typeof import('@aws-sdk/client-s3')

// The SDK takes about a second to load: only a process that reads S3 pays for it (the CLI's
// review and catalog on a filesystem config do not), once, on the first request.
let sdk: Promise<S3Sdk> | undefined
function loadSdk(): Promise<S3Sdk> {
  sdk ??= import('@aws-sdk/client-s3')
  return sdk
}

interface SdkClient {
  readonly sdk: S3Sdk
  readonly client: S3Client
  /** Listings at the cost of a signed request, learned from the client's own (s3-direct-listing.ts). */
  readonly direct: DirectListing
}

/** One S3 client per configured location, shared by every `sub()` view; created on first use. */
class Connection {
  readonly bucket: string
  readonly requestTimeoutMs: number
  readonly endpoint: string
  readonly #config: S3LocationConfig
  #client: Promise<SdkClient> | undefined

  constructor(config: S3LocationConfig) {
    this.#config = config
    this.bucket = config.bucket
    this.requestTimeoutMs = durationMs(config.requestTimeout)
    this.endpoint = config.endpoint ?? `aws:${config.region}`
  }

  /**
   * The SDK (for its command classes), the client and its direct listing; rejects only when the SDK
   * cannot be loaded.
   */
  client(): Promise<SdkClient> {
    this.#client ??= loadSdk().then((loaded) => {
      const client = this.#create(loaded)
      return { sdk: loaded, client, direct: new DirectListing(client) }
    })
    return this.#client
  }

  #create(loaded: S3Sdk): S3Client {
    const config = this.#config
    const requestTimeoutMs = this.requestTimeoutMs
    const credentials = s3Credentials(config)
    return new loaded.S3Client({
      region: config.region,
      forcePathStyle: config.forcePathStyle,
      ...(config.endpoint !== undefined ? { endpoint: config.endpoint } : {}),
      ...(credentials !== undefined ? { credentials } : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: config.maxAttempts,
      requestHandler: { connectionTimeout: Math.min(requestTimeoutMs, 10_000), requestTimeout: requestTimeoutMs, httpAgent: { keepAlive: true, maxSockets: 64 }, httpsAgent: { keepAlive: true, maxSockets: 64 } },
    })
  }
}

function errorName(error: unknown): string {
  if (typeof error !== 'object' || error === null) return String(error)
  const code = 'code' in error && typeof error.code === 'string' ? error.code : undefined
  const name = 'name' in error && typeof error.name === 'string' ? error.name : undefined
  // Network failures carry an errno code (ECONNREFUSED); S3 answers carry an error name.
  return code ?? name ?? 'error'
}

function httpStatus(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null || !('$metadata' in error)) return undefined
  const metadata = error.$metadata
  return typeof metadata === 'object' && metadata !== null && 'httpStatusCode' in metadata && typeof metadata.httpStatusCode === 'number' ? metadata.httpStatusCode : undefined
}

/**
 * One S3 location (bucket and key prefix) as a BlobStore, made by s3BlobStore; `sub` views share its
 * client. Every request is bounded in time, even without a signal (twice `requestTimeout`). S3 errors
 * become BlobNotFoundError or a one-line BlobStoreError that names the location and endpoint (e.g. "check
 * the access key and secret key"), never a credential. Listings go direct once the SDK has listed
 * (s3-direct-listing.ts: a third of the CPU); whatever a direct listing cannot read is the SDK's to answer.
 */
export class S3BlobStore implements BlobStore {
  readonly location: string
  readonly #connection: Connection
  readonly #root: string

  constructor(connection: Connection, root: string) {
    this.#connection = connection
    this.#root = root
    this.location = `s3://${connection.bucket}/${root}`
  }

  /** Bounded even when the caller passes no signal: a hung S3 server must not hang a poll. */
  #signal(signal: AbortSignal | undefined): AbortSignal {
    const timeout = AbortSignal.timeout(Math.min(MAX_TIMER_MS, this.#connection.requestTimeoutMs * 2))
    return signal ? AbortSignal.any([signal, timeout]) : timeout
  }

  #error(action: string, key: string, error: unknown): BlobStoreError {
    if (error instanceof BlobStoreError) return error
    const name = errorName(error)
    const where = `${this.location}${key} at ${this.#connection.endpoint}`
    switch (name) {
      case 'NoSuchBucket':
        return new BlobStoreError(`bucket ${this.#connection.bucket} does not exist at ${this.#connection.endpoint}`)
      case 'InvalidAccessKeyId':
      case 'SignatureDoesNotMatch':
      case 'AccessDenied':
        return new BlobStoreError(`cannot ${action} ${where}: ${name}: check the access key and secret key`)
      case 'TimeoutError':
      case 'AbortError':
        return new BlobStoreError(`cannot ${action} ${where}: no answer within ${this.#connection.requestTimeoutMs} ms`)
      default: {
        const status = httpStatus(error)
        return new BlobStoreError(`cannot ${action} ${where}: ${name}${status !== undefined ? ` (HTTP ${status})` : ''}`)
      }
    }
  }

  async listPage(prefix: string, options: ListOptions & { readonly continuation?: string } = {}): Promise<BlobPage> {
    const root = this.#root
    const query: ListingQuery = {
      prefix: root + prefix,
      ...(options.delimiter ? { delimiter: options.delimiter } : {}),
      ...(options.startAfter !== undefined ? { startAfter: root + options.startAfter } : {}),
      ...(options.maxKeys !== undefined ? { maxKeys: options.maxKeys } : {}),
      ...(options.continuation !== undefined ? { continuationToken: options.continuation } : {}),
    }
    try {
      const { sdk: s3, client, direct } = await this.#connection.client()
      const signal = this.#signal(options.signal)
      // Direct first once the SDK has shown the way; the SDK answers whatever the direct path does not.
      const tried = direct.ready ? await direct.list(query, signal) : undefined
      if (tried !== undefined && 'page' in tried) {
        const { page } = tried
        return this.#page(prefix, page.objects, page.prefixes, page.truncated, page.nextContinuationToken)
      }
      const command = new s3.ListObjectsV2Command({
        Bucket: this.#connection.bucket,
        Prefix: query.prefix,
        ...(query.delimiter !== undefined ? { Delimiter: query.delimiter } : {}),
        ...(query.startAfter !== undefined ? { StartAfter: query.startAfter } : {}),
        ...(query.maxKeys !== undefined ? { MaxKeys: query.maxKeys } : {}),
        ...(query.continuationToken !== undefined ? { ContinuationToken: query.continuationToken } : {}),
      })
      const learn = direct.watch(command)
      const answer = await client.send(command, { abortSignal: signal })
      learn()
      if (tried !== undefined && tried.failed === 'refused') direct.disable()
      const objects = (answer.Contents ?? []).flatMap((o): ListedObject[] => (o.Key === undefined
        ? []
        : [{ key: o.Key, size: o.Size ?? 0, modifiedMs: o.LastModified?.getTime() ?? 0 }]))
      const prefixes = (answer.CommonPrefixes ?? []).flatMap((p) => (p.Prefix === undefined ? [] : [p.Prefix]))
      return this.#page(prefix, objects, prefixes, answer.IsTruncated === true, answer.NextContinuationToken)
    } catch (error) {
      throw this.#error('list', prefix, error)
    }
  }

  /** A page relative to the root: keys outside it dropped, the root cut off keys and prefixes. */
  #page(prefix: string, objects: readonly ListedObject[], prefixes: readonly string[], truncated: boolean, token: string | undefined): BlobPage {
    const root = this.#root
    // A listed object is a BlobInfo already when the store is rooted at the bucket.
    const blobs: readonly BlobInfo[] = root === '' ? objects : objects.flatMap((o) => (o.key.startsWith(root) ? [{ key: o.key.slice(root.length), size: o.size, modifiedMs: o.modifiedMs }] : []))
    const relative = prefixes.map((p) => p.slice(root.length))
    const next = truncated ? token : undefined
    if (truncated && next === undefined) throw new BlobStoreError(`listing ${this.location}${prefix} is truncated but has no continuation token`)
    return next === undefined ? { blobs, prefixes: relative } : { blobs, prefixes: relative, next }
  }

  async #read(key: string, range: string | undefined, signal: AbortSignal | undefined): Promise<Buffer> {
    try {
      const { sdk: s3, client } = await this.#connection.client()
      const answer = await client.send(new s3.GetObjectCommand({
        Bucket: this.#connection.bucket,
        Key: this.#root + key,
        ...(range !== undefined ? { Range: range } : {}),
      }), { abortSignal: this.#signal(signal) })
      if (answer.Body === undefined) throw new BlobStoreError(`${this.location}${key}: S3 answered without a body`)
      return Buffer.from(await answer.Body.transformToByteArray())
    } catch (error) {
      if (errorName(error) === 'NoSuchKey' || (httpStatus(error) === 404 && errorName(error) !== 'NoSuchBucket')) throw new BlobNotFoundError(this.location, key)
      throw this.#error('read', key, error)
    }
  }

  get(key: string, signal?: AbortSignal): Promise<Buffer> {
    return this.#read(key, undefined, signal)
  }

  async getRange(key: string, offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0)
    const bytes = await this.#read(key, `bytes=${offset}-${offset + length - 1}`, signal)
    if (bytes.length !== length) throw new BlobStoreError(`${this.location}${key} is shorter than ${offset + length} bytes (read ${bytes.length} at ${offset})`)
    return bytes
  }

  async stat(key: string, signal?: AbortSignal): Promise<BlobInfo | null> {
    try {
      const { sdk: s3, client } = await this.#connection.client()
      const answer = await client.send(new s3.HeadObjectCommand({ Bucket: this.#connection.bucket, Key: this.#root + key }), { abortSignal: this.#signal(signal) })
      return { key, size: answer.ContentLength ?? 0, modifiedMs: answer.LastModified?.getTime() ?? 0 }
    } catch (error) {
      // HEAD has no body, so a missing bucket is a bare 404 too; the listing before any stat reports it.
      if (httpStatus(error) === 404) return null
      throw this.#error('stat', key, error)
    }
  }

  sub(prefix: string): BlobStore {
    return new S3BlobStore(this.#connection, this.#root + prefix)
  }
}

/** A store rooted at `prefix` in the configured bucket. */
export function s3BlobStore(config: S3LocationConfig, prefix: string = config.prefix): S3BlobStore {
  return new S3BlobStore(new Connection(config), prefix)
}
