// Runs s3rver as its own process (a real S3 server on loopback, as the tests' peer), with two
// fixes for s3rver 3.7 on Node 24:
// - continuation tokens use DES, which OpenSSL 3 only has in its legacy provider: the parent
//   starts this process with --openssl-legacy-provider;
// - a delimiter listing derives common prefixes only from objects it meets one level down and
//   prunes deeper folders, so a folder that holds only folders (every <namespace>/ of a
//   per-PVC layout) never showed up. The folders are added here.
// Usage: node --openssl-legacy-provider s3rver-process.ts <directory> [port]; prints {"port":N}.
import { readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import S3rver from 's3rver'

interface ListOptions { delimiter?: string; prefix?: string; startAfter?: string }
interface ListResult { commonPrefixes: string[] }
interface StoreClass { prototype: { listObjects(this: Store, bucket: string, options: ListOptions): Promise<ListResult> } }
interface Store { getBucketPath(bucket: string): string }

const require = createRequire(import.meta.url)
const FilesystemStore = require('s3rver/lib/stores/filesystem.js') as StoreClass
const listObjects = FilesystemStore.prototype.listObjects
FilesystemStore.prototype.listObjects = async function (bucket, options) {
  const result = await listObjects.call(this, bucket, options)
  if (options.delimiter !== '/') return result
  const prefix = options.prefix ?? ''
  const cut = prefix.lastIndexOf('/') + 1
  let names: string[] = []
  try {
    names = readdirSync(join(this.getBucketPath(bucket), prefix.slice(0, cut)), { withFileTypes: true })
      .filter((d) => d.isDirectory() && d.name.startsWith(prefix.slice(cut))).map((d) => d.name)
  } catch {
    return result
  }
  const all = new Set(result.commonPrefixes)
  for (const name of names) {
    const common = `${prefix.slice(0, cut)}${name}/`
    if (options.startAfter === undefined || common > options.startAfter) all.add(common)
  }
  result.commonPrefixes = [...all].sort()
  return result
}

const [directory, port] = process.argv.slice(2)
if (!directory) throw new Error('usage: s3rver-process.ts <directory> [port]')
const server = new S3rver({ address: '127.0.0.1', port: Number(port ?? 0), silent: true, directory, resetOnClose: false })
const address = await server.run()
process.stdout.write(`${JSON.stringify({ port: address.port })}\n`)
process.on('SIGTERM', () => { void server.close().then(() => process.exit(0)) })
