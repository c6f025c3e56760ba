// Helpers for the restic reader tests: the committed fixture repositories (made by
// test/fixtures/restic/make-fixtures.sh with the real restic), writable copies to damage, a
// BlobStore that counts reads, and a test-only encryptor to forge files with a repository's
// master key. The encryptor lives here on purpose: src/restic only ever reads.
import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, cpSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { zstdCompressSync } from 'node:zlib'
import { aes256Ctr, poly1305Aes, type CipherKeys } from '../../src/restic/crypto.ts'
import { findMasterKey } from '../../src/restic/keys.ts'
import type { BlobInfo, BlobPage, BlobStore, ListOptions } from '../../src/storage/blob-store.ts'
import { FsBlobStore } from '../../src/storage/fs-store.ts'

export const RESTIC_FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'restic')
export const PASSWORD = 'test-password'
export const SECOND_PASSWORD = 'second-password'

export type FixtureName = 'v1' | 'v2' | 'empty' | 'two-keys' | 'shared'

export function fixtureStore(name: FixtureName): FsBlobStore {
  return new FsBlobStore(join(RESTIC_FIXTURES, name))
}

/** What `restic snapshots --json` said about the fixture when it was made. */
export interface ResticJsonSnapshot {
  id: string
  short_id: string
  time: string
  tree: string
  paths: string[]
  hostname: string
  username?: string
  tags?: string[]
}

export function resticSnapshotsJson(name: FixtureName): ResticJsonSnapshot[] {
  return JSON.parse(readFileSync(join(RESTIC_FIXTURES, `${name}.snapshots.json`), 'utf8')) as ResticJsonSnapshot[]
}

function makeWritable(path: string): void {
  chmodSync(path, statSync(path).isDirectory() ? 0o755 : 0o644)
  if (statSync(path).isDirectory()) for (const name of readdirSync(path)) makeWritable(join(path, name))
}

/** A writable copy of a fixture repository in `dir` (e.g. t.testdir()); returns the copy's root. */
export function copyFixture(name: FixtureName, dir: string): string {
  const root = join(dir, name)
  cpSync(join(RESTIC_FIXTURES, name), root, { recursive: true })
  makeWritable(root)
  return root
}

/** The only snapshot file name in a copied repository directory, or the first one. */
export function firstFile(root: string, subdir: string): string {
  const name = readdirSync(join(root, subdir)).sort()[0]
  if (name === undefined) throw new Error(`no file in ${root}/${subdir}`)
  return name
}

/** A BlobStore wrapper that counts reads per key. */
export class CountingStore implements BlobStore {
  readonly gets = new Map<string, number>()
  readonly #inner: BlobStore

  constructor(inner: BlobStore) {
    this.#inner = inner
  }

  get location(): string {
    return this.#inner.location
  }

  getCount(prefix: string): number {
    let total = 0
    for (const [key, count] of this.gets) if (key.startsWith(prefix)) total += count
    return total
  }

  listPage(prefix: string, options?: ListOptions & { readonly continuation?: string }): Promise<BlobPage> {
    return this.#inner.listPage(prefix, options)
  }

  get(key: string, signal?: AbortSignal): Promise<Buffer> {
    this.gets.set(key, (this.gets.get(key) ?? 0) + 1)
    return this.#inner.get(key, signal)
  }

  getRange(key: string, offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    return this.#inner.getRange(key, offset, length, signal)
  }

  stat(key: string, signal?: AbortSignal): Promise<BlobInfo | null> {
    return this.#inner.stat(key, signal)
  }

  sub(prefix: string): BlobStore {
    return this.#inner.sub(prefix)
  }
}

/** The master keys, through the reader's own key search (one scrypt run). */
export async function masterKeys(store: BlobStore, password = PASSWORD): Promise<CipherKeys> {
  return (await findMasterKey(store, password)).keys
}

/** Test-only: IV || AES-256-CTR || Poly1305-AES, as restic writes unpacked files. */
export function seal(keys: CipherKeys, plaintext: Buffer): Buffer {
  const iv = randomBytes(16)
  const ciphertext = aes256Ctr(keys, iv, plaintext)
  return Buffer.concat([iv, ciphertext, poly1305Aes(keys, iv, ciphertext)])
}

/** Test-only: the v2 "compressed" encoding of a JSON document (byte 2, then zstd). */
export function compressedJson(document: unknown): Buffer {
  return Buffer.concat([Buffer.from([2]), zstdCompressSync(Buffer.from(JSON.stringify(document)))])
}

/** Writes `sealed` into `<root>/<subdir>/` under its SHA-256, as restic names files; returns the name. */
export function writeContentAddressed(root: string, subdir: string, sealed: Buffer): string {
  const id = createHash('sha256').update(sealed).digest('hex')
  mkdirSync(join(root, subdir), { recursive: true }) // git keeps no empty directories
  writeFileSync(join(root, subdir, id), sealed)
  return id
}
