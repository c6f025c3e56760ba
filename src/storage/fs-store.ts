// A directory as blob storage: an NFS-mounted repository in a cluster, a local one in tests and
// in the embedded default. Keys map to paths below the root; they can never climb out of it.
import { open, readdir, readFile, stat } from 'node:fs/promises'
import { join, resolve, sep } from 'node:path'
import { errorMessage } from '../errors.ts'
import { type BlobInfo, BlobNotFoundError, type BlobPage, type BlobStore, BlobStoreError, type ListOptions } from './blob-store.ts'

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined
}

/** The first `maxKeys` keys and prefixes of a page in byte order, as S3 cuts a page, with the next token when cut. */
function firstKeys(page: { blobs: BlobInfo[]; prefixes: string[] }, maxKeys: number): BlobPage {
  if (page.blobs.length + page.prefixes.length <= maxKeys) return page
  const names = [...page.blobs.map((b) => b.key), ...page.prefixes].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).slice(0, maxKeys)
  const last = names.at(-1)
  const within = (key: string) => last !== undefined && key <= last
  return { blobs: page.blobs.filter((b) => within(b.key)), prefixes: page.prefixes.filter(within), ...(last !== undefined ? { next: last } : {}) }
}

/**
 * A directory as a BlobStore: keys are '/'-separated paths below `root` (absolute keys and `.`/`..` parts
 * are rejected with BlobStoreError, so a key never leaves it). Reads only; ENOENT/ENOTDIR become
 * BlobNotFoundError, other errors BlobStoreError with the errno code.
 */
export class FsBlobStore implements BlobStore {
  readonly location: string
  readonly #root: string

  constructor(root: string) {
    this.#root = resolve(root)
    this.location = this.#root.endsWith(sep) ? this.#root : `${this.#root}${sep}`
  }

  #path(key: string): string {
    const parts = key.split('/')
    if (key.startsWith('/') || parts.some((p) => p === '..' || p === '.')) {
      throw new BlobStoreError(`key ${JSON.stringify(key)} is not a plain relative path below ${this.location}`)
    }
    return join(this.#root, ...parts)
  }

  #fail(key: string, error: unknown): never {
    if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') throw new BlobNotFoundError(this.location, key)
    if (error instanceof BlobStoreError || (error instanceof Error && error.name === 'AbortError')) throw error
    const reason = errorCode(error) ?? errorMessage(error)
    throw new BlobStoreError(`cannot read ${this.location}${key}: ${reason}`)
  }

  async listPage(prefix: string, options: ListOptions & { readonly continuation?: string } = {}): Promise<BlobPage> {
    options.signal?.throwIfAborted()
    const cut = prefix.lastIndexOf('/') + 1
    const dirKey = prefix.slice(0, cut)
    const namePrefix = prefix.slice(cut)
    const blobs: BlobInfo[] = []
    const prefixes: string[] = []
    await this.#walk(dirKey, namePrefix, options.delimiter === '/', blobs, prefixes, options.signal)
    // The continuation token is the last key or prefix of the previous page, as StartAfter.
    const after = options.continuation ?? options.startAfter
    const keep = (key: string) => after === undefined || key > after
    const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
    const page = {
      blobs: blobs.filter((b) => keep(b.key)).sort((a, b) => byKey(a.key, b.key)),
      prefixes: prefixes.filter(keep).sort(byKey),
    }
    return options.maxKeys === undefined ? page : firstKeys(page, options.maxKeys)
  }

  async #walk(dirKey: string, namePrefix: string, rollUp: boolean, blobs: BlobInfo[], prefixes: string[], signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted()
    const dirPath = dirKey === '' ? this.#root : this.#path(dirKey.slice(0, -1))
    let names: string[]
    try {
      names = await readdir(dirPath)
    } catch (error) {
      // A listing of something that is not there is empty, as on S3.
      if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return
      throw new BlobStoreError(`cannot list ${this.location}${dirKey}: ${errorCode(error) ?? String(error)}`)
    }
    for (const name of names) {
      if (!name.startsWith(namePrefix)) continue
      const key = `${dirKey}${name}`
      let info: Awaited<ReturnType<typeof stat>>
      try {
        // stat, not lstat: NFS exports and Kubernetes volumes are full of symlinks.
        info = await stat(join(dirPath, name))
      } catch (error) {
        if (errorCode(error) === 'ENOENT') continue // deleted while listing
        throw new BlobStoreError(`cannot stat ${this.location}${key}: ${errorCode(error) ?? String(error)}`)
      }
      if (info.isDirectory()) {
        if (rollUp) prefixes.push(`${key}/`)
        else await this.#walk(`${key}/`, '', false, blobs, prefixes, signal)
      } else if (info.isFile()) {
        blobs.push({ key, size: info.size, modifiedMs: info.mtimeMs })
      }
    }
  }

  async get(key: string, signal?: AbortSignal): Promise<Buffer> {
    try {
      return await readFile(this.#path(key), signal ? { signal } : {})
    } catch (error) {
      return this.#fail(key, error)
    }
  }

  async getRange(key: string, offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    signal?.throwIfAborted()
    let handle: Awaited<ReturnType<typeof open>> | undefined
    try {
      handle = await open(this.#path(key), 'r')
      const buffer = Buffer.alloc(length)
      const { bytesRead } = await handle.read(buffer, 0, length, offset)
      if (bytesRead < length) throw new BlobStoreError(`${this.location}${key} is shorter than ${offset + length} bytes (read ${bytesRead} at ${offset})`)
      return buffer
    } catch (error) {
      return this.#fail(key, error)
    } finally {
      await handle?.close()
    }
  }

  async stat(key: string, signal?: AbortSignal): Promise<BlobInfo | null> {
    signal?.throwIfAborted()
    try {
      const info = await stat(this.#path(key))
      return info.isFile() ? { key, size: info.size, modifiedMs: info.mtimeMs } : null
    } catch (error) {
      if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return null
      return this.#fail(key, error)
    }
  }

  sub(prefix: string): BlobStore {
    return new FsBlobStore(this.#path(prefix.replace(/\/+$/, '')))
  }
}
