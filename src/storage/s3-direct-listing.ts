// ListObjectsV2 at the cost of a signed request (issue 14 item 4). Through `client.send` a listing of
// 50 keys costs ~2.3-3.8 ms of client CPU: the SDK's middleware stack (endpoint rules, schema
// serialization, retry and user-agent bookkeeping) and, above all, its generic XML deserializer. A
// request signed with the SDK's signer and sent over its HTTP handler costs ~1 ms. So a listing goes
// direct, made of the SDK's own maintained parts:
// - where: the route (protocol, host, port, path, signing region and service) of the last ListObjectsV2
//   the SDK itself sent for this client and S3 answered, so its endpoint rules (path or virtual-host
//   style, AWS partitions, FIPS, dual-stack) decide it; no route is guessed;
// - credentials and signing: the client's signer (its credential chain, memoized and refreshed) with
//   the SDK's clock-skew offset;
// - transport: the client's request handler (its keep-alive agent, connection and request timeouts);
// - reading: parseListObjectsV2 for a 2xx ListBucketResult only.
// Anything else (an error answer, a throttle, a network failure, a body the reader does not know) is
// not interpreted here: the caller sends the same listing through `client.send`, so the SDK's retries,
// error mapping (NoSuchBucket, AccessDenied, SignatureDoesNotMatch, ...) and redirects answer it, and
// the listing it sends teaches the next route. If the SDK then succeeds where a direct request was
// refused or unreadable, the direct path is wrong for this server and is turned off for good.
import { Readable } from 'node:stream'
import type { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import { type ListObjectsV2Page, parseListObjectsV2 } from './s3-list-objects.ts'

type SdkConfig = S3Client['config']
type SdkSigner = Awaited<ReturnType<SdkConfig['signer']>>
type SdkRequest = Parameters<SdkSigner['sign']>[0]

/** Where the SDK sent a ListObjectsV2 of this client's bucket, and the scope it signed it for. */
interface ListingRoute {
  readonly protocol: string
  readonly hostname: string
  readonly port: number | undefined
  /** The bucket's path: `/bucket/` in path style, `/` in virtual-host style. */
  readonly path: string
  /** The Host header the SDK signed (with the port when not the default). */
  readonly host: string
  readonly region: string
  readonly service: string
}

/** One ListObjectsV2 request, in the S3 API's query parameters' terms. */
export interface ListingQuery {
  /** The full key prefix (the store's root included). */
  readonly prefix: string
  readonly delimiter?: string
  /** A full key. */
  readonly startAfter?: string
  readonly maxKeys?: number
  readonly continuationToken?: string
}

/**
 * What a direct listing came to: the page; `refused` when S3 answered with something other than a
 * readable 2xx listing that a retry would not change (a 3xx or 4xx, an unreadable body), which the SDK
 * succeeding afterwards makes our fault; `transient` for a throttle, a 5xx, a 200 carrying an S3 error,
 * a network failure or no route yet.
 */
export type DirectResult = { readonly page: ListObjectsV2Page } | { readonly failed: 'refused' | 'transient' }

const TRANSIENT: DirectResult = { failed: 'transient' }
const REFUSED: DirectResult = { failed: 'refused' }

/** SigV4's Authorization header: the credential scope names the signing region and service. */
const SIGV4_SCOPE = /^AWS4-HMAC-SHA256 Credential=[^/,]+\/\d{8}\/([^/,]+)\/([^/,]+)\/aws4_request,/

function header(headers: unknown, name: string): string | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name && typeof value === 'string') return value
  return undefined
}

/**
 * The route of a request the SDK signed, when it is one a direct listing can repeat: signed with
 * SigV4 (not SigV4a for multi-region access points, not an S3 Express session).
 */
function routeOf(request: unknown): ListingRoute | undefined {
  if (typeof request !== 'object' || request === null) return undefined
  const { protocol, hostname, port, path, headers } = request as Record<string, unknown>
  if (typeof protocol !== 'string' || typeof hostname !== 'string' || typeof path !== 'string') return undefined
  if (port !== undefined && typeof port !== 'number') return undefined
  const host = header(headers, 'host')
  const scope = SIGV4_SCOPE.exec(header(headers, 'authorization') ?? '')
  if (host === undefined || scope === null || header(headers, 'x-amz-s3session-token') !== undefined) return undefined
  return { protocol, hostname, port, path, host, region: scope[1]!, service: scope[2]! }
}

function isAnswer(value: unknown): value is { readonly statusCode: number; readonly body: unknown } {
  return typeof value === 'object' && value !== null && 'statusCode' in value && typeof value.statusCode === 'number' && 'body' in value
}

/**
 * Direct ListObjectsV2 for one S3 client (see the file comment): `watch` a listing sent through the
 * SDK to learn its route, then `list` sends the same request signed by the client's signer over its
 * request handler and reads a 2xx answer. Holds no credential; reads the client's config (signer,
 * request handler, stream collector, clock offset) on every request.
 */
export class DirectListing {
  readonly #config: SdkConfig
  #route: ListingRoute | undefined
  #disabled = false
  #signer: Promise<SdkSigner> | undefined

  constructor(client: S3Client) {
    this.#config = client.config
  }

  /** Whether `list` can be tried: a route is known and the direct path was not turned off. */
  get ready(): boolean {
    return this.#route !== undefined && !this.#disabled
  }

  /**
   * Adds to this one command a middleware that records the request the SDK sends (the last attempt's,
   * signed); the returned function makes it the route. Call it only once the send succeeded: only a
   * route S3 answered is repeated.
   */
  watch(command: ListObjectsV2Command): () => void {
    let sent: unknown
    command.middlewareStack.add((next) => async (args) => {
      sent = args.request
      return next(args)
    }, { step: 'deserialize', name: 'volsyncAutorestoreListingRoute', override: true })
    return () => {
      this.#route = routeOf(sent) ?? this.#route
    }
  }

  /** The answer's body as text: the handler's Node stream read directly, anything else by the SDK's collector. */
  async #text(body: unknown): Promise<string> {
    if (body instanceof Readable) return readText(body)
    const bytes = await this.#config.streamCollector(body)
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
  }

  /** Turns the direct path off for this client: the SDK succeeded where it was refused. */
  disable(): void {
    this.#disabled = true
  }

  /**
   * Sends `query` directly. Resolves to the page, or to why not (see DirectResult); rejects only when
   * `signal` aborted (the caller's or the listing's time bound), with the request handler's AbortError.
   */
  async list(query: ListingQuery, signal: AbortSignal): Promise<DirectResult> {
    const route = this.#route
    if (route === undefined || this.#disabled) return TRANSIENT
    try {
      // A signer that failed to resolve is asked for again next time, as the SDK asks on every request.
      this.#signer ??= this.#config.signer().catch((error: unknown) => {
        this.#signer = undefined
        throw error
      })
      const signer = await this.#signer
      const request: SdkRequest = {
        method: 'GET',
        protocol: route.protocol,
        hostname: route.hostname,
        ...(route.port !== undefined ? { port: route.port } : {}),
        path: route.path,
        query: listingParameters(query),
        headers: { host: route.host },
      }
      const signed = await signer.sign(request, {
        signingDate: new Date(Date.now() + this.#config.systemClockOffset),
        signingRegion: route.region,
        signingService: route.service,
      })
      const { response }: { response: unknown } = await this.#config.requestHandler.handle(signed, { abortSignal: signal })
      if (!isAnswer(response)) return TRANSIENT
      // Read even an error's body: the keep-alive socket is reused only once the answer is consumed.
      const text = await this.#text(response.body)
      const status = response.statusCode
      if (status === 429 || status === 408 || status >= 500) return TRANSIENT
      if (status < 200 || status >= 300) return REFUSED
      const page = parseListObjectsV2(text)
      if (page !== undefined) return { page }
      // S3 may send an error with a 200 once it has started answering (the SDK retries it as a 503).
      return text.trimEnd().endsWith('</Error>') ? TRANSIENT : REFUSED
    } catch (error) {
      if (signal.aborted) throw error
      return TRANSIENT
    }
  }
}

/** A Node stream's UTF-8 text (decoded across chunk boundaries), as node:http hands a body over. */
function readText(body: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    body.setEncoding('utf8')
    body.on('data', (chunk: string) => { text += chunk })
    body.once('end', () => resolve(text))
    body.once('error', reject)
  })
}

/** ListObjectsV2's query parameters, as the SDK serializes them. */
function listingParameters(query: ListingQuery): Record<string, string> {
  const parameters: Record<string, string> = { 'list-type': '2', prefix: query.prefix }
  if (query.delimiter !== undefined) parameters.delimiter = query.delimiter
  if (query.startAfter !== undefined) parameters['start-after'] = query.startAfter
  if (query.maxKeys !== undefined) parameters['max-keys'] = String(query.maxKeys)
  if (query.continuationToken !== undefined) parameters['continuation-token'] = query.continuationToken
  return parameters
}
