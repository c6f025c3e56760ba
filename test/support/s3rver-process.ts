// Runs s3rver as its own process (a real S3 server on loopback, as the tests' peer), with three
// fixes for s3rver 3.7 on Node 24:
// - continuation tokens use DES, which OpenSSL 3 only has in its legacy provider: the parent
//   starts this process with --openssl-legacy-provider;
// - a delimiter listing derives common prefixes only from objects it meets one level down and
//   prunes deeper folders, so a folder that holds only folders (every <namespace>/ of a
//   per-PVC layout) never showed up;
// - a listing walks folders in directory order, not key order, and cuts the page at MaxKeys in
//   that order, so a truncated page is not the first keys after StartAfter and its continuation
//   skips keys. S3 lists in byte order (ListObjectsV2), and the catalog's scan relies on it.
// The listing is therefore replaced: a walk in key order (a folder sorts as its name plus '/'),
// pruning what lies before StartAfter or outside the prefix, stopping at MaxKeys (keys and common
// prefixes together, as S3 counts them).
// Usage: node --openssl-legacy-provider s3rver-process.ts <directory> [port]; prints {"port":N}.
import { readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import S3rver from 's3rver'

interface ListOptions { delimiter?: string; prefix?: string; startAfter?: string; maxKeys?: number }
interface ListResult { objects: unknown[]; commonPrefixes: string[]; isTruncated: boolean }
interface Store { getBucketPath(bucket: string): string; getMetadata(bucket: string, key: string): Promise<unknown> }
interface StoreClass { prototype: Store & { listObjects(this: Store, bucket: string, options: ListOptions): Promise<ListResult> } }
type S3ObjectClass = new (bucket: string, key: string, content: null, metadata: unknown) => unknown

const require = createRequire(import.meta.url)
const FilesystemStore = require('s3rver/lib/stores/filesystem.js') as StoreClass
const S3Object = require('s3rver/lib/models/object.js') as S3ObjectClass
const OBJECT_SUFFIX = '._S3rver_object'
const METADATA_READS_AT_ONCE = 64

/** Keys (and common prefixes) below `dir` in byte order, as S3 lists them. */
function* walkInKeyOrder(dir: string, keyPrefix: string, options: Required<Pick<ListOptions, 'prefix' | 'startAfter'>> & { delimiter: string }): Generator<{ key: string; common: boolean }> {
  let entries
  try {
    entries = readdirSync(dir, { withFileTypes: true })
  } catch (error) {
    // A folder that is not there holds no keys; any other failure (EMFILE under many listings at
    // once) must fail the listing, never answer it as empty.
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return
    throw error
  }
  const named = entries.flatMap((d): Array<{ sortKey: string; folder: string | undefined }> => {
    if (d.isDirectory()) return [{ sortKey: `${keyPrefix}${d.name}/`, folder: d.name }]
    if (d.isFile() && d.name.endsWith(OBJECT_SUFFIX)) return [{ sortKey: `${keyPrefix}${d.name.slice(0, -OBJECT_SUFFIX.length)}`, folder: undefined }]
    return []
  }).sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0))
  const { prefix, startAfter, delimiter } = options
  for (const { sortKey, folder } of named) {
    if (folder === undefined) {
      if (sortKey.startsWith(prefix) && sortKey > startAfter) yield { key: sortKey, common: false }
      continue
    }
    // A folder holds keys starting with sortKey: skip it when none of them can match.
    if (!sortKey.startsWith(prefix) && !prefix.startsWith(sortKey)) continue
    if (startAfter >= sortKey && !startAfter.startsWith(sortKey)) continue
    if (delimiter !== '' && sortKey.startsWith(prefix)) {
      const cut = sortKey.indexOf(delimiter, prefix.length)
      if (cut !== -1) {
        const common = sortKey.slice(0, cut + delimiter.length)
        if (common === sortKey) {
          if (common > startAfter) yield { key: common, common: true }
          continue
        }
      }
    }
    yield* walkInKeyOrder(join(dir, folder), sortKey, options)
  }
}

FilesystemStore.prototype.listObjects = async function (bucket, options) {
  const maxKeys = options.maxKeys ?? 1000
  const walkOptions = { prefix: options.prefix ?? '', startAfter: options.startAfter ?? '', delimiter: options.delimiter ?? '' }
  const keys: string[] = []
  const commonPrefixes: string[] = []
  let isTruncated = false
  for (const { key, common } of walkInKeyOrder(this.getBucketPath(bucket), '', walkOptions)) {
    if (common && commonPrefixes.at(-1) === key) continue
    if (keys.length + commonPrefixes.length === maxKeys) {
      isTruncated = true
      break
    }
    if (common) commonPrefixes.push(key)
    else keys.push(key)
  }
  // A few at a time: each read opens files, and 16 listings of 1,000 keys at once ran out of descriptors.
  const metadata: unknown[] = []
  for (let i = 0; i < keys.length; i += METADATA_READS_AT_ONCE) {
    metadata.push(...await Promise.all(keys.slice(i, i + METADATA_READS_AT_ONCE).map((key) => this.getMetadata(bucket, key).catch((error: unknown) => {
      if ((error as { code?: string }).code === 'ENOENT') return undefined
      throw error
    }))))
  }
  const objects = keys.flatMap((key, i) => (metadata[i] === undefined ? [] : [new S3Object(bucket, key, null, metadata[i])]))
  return { objects, commonPrefixes, isTruncated }
}

const [directory, port] = process.argv.slice(2)
if (!directory) throw new Error('usage: s3rver-process.ts <directory> [port]')
const server = new S3rver({ address: '127.0.0.1', port: Number(port ?? 0), silent: true, directory, resetOnClose: false })
const address = await server.run()
process.stdout.write(`${JSON.stringify({ port: address.port })}\n`)
process.on('SIGTERM', () => { void server.close().then(() => process.exit(0)) })
