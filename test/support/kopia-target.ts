// Test-only: where a KopiaTestWriter puts its blobs, and a BlobStore wrapper that records reads
// (to prove that a poll reads nothing it has read before).
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { BlobInfo, BlobPage, BlobStore, ListOptions } from '../../src/storage/blob-store.ts'

export interface BlobTarget {
  readonly root: string
  put(key: string, bytes: Buffer): Promise<void>
  remove(key: string): Promise<void>
}

/** A fresh temporary directory, removed by `cleanup`. */
export async function directoryTarget(): Promise<BlobTarget & { cleanup(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'kopia-test-'))
  return {
    root,
    async put(key, bytes) {
      const path = join(root, ...key.split('/'))
      await mkdir(dirname(path), { recursive: true })
      await writeFile(path, bytes)
    },
    async remove(key) {
      await unlink(join(root, ...key.split('/')))
    },
    cleanup: () => rm(root, { recursive: true, force: true }),
  }
}

export interface ReadLog {
  gets: string[]
  ranges: string[]
  lists: string[]
}

/** Wraps a store and logs every get / range get / list by key. */
export function recordingStore(inner: BlobStore, log: ReadLog = { gets: [], ranges: [], lists: [] }): BlobStore & { readonly log: ReadLog } {
  return {
    log,
    location: inner.location,
    listPage(prefix: string, options?: ListOptions & { readonly continuation?: string }): Promise<BlobPage> {
      log.lists.push(prefix)
      return inner.listPage(prefix, options)
    },
    get(key: string, signal?: AbortSignal): Promise<Buffer> {
      log.gets.push(key)
      return inner.get(key, signal)
    },
    getRange(key: string, offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
      log.ranges.push(`${key}@${offset}+${length}`)
      return inner.getRange(key, offset, length, signal)
    },
    stat(key: string, signal?: AbortSignal): Promise<BlobInfo | null> {
      return inner.stat(key, signal)
    },
    sub(prefix: string): BlobStore {
      return recordingStore(inner.sub(prefix), log)
    },
  }
}

export function clearLog(log: ReadLog): void {
  log.gets.length = 0
  log.ranges.length = 0
  log.lists.length = 0
}
