// A restic repository read natively (no restic binary) through a BlobStore rooted at it: open
// with a password, then list snapshots. Read-only: no locks are taken, nothing is written.
// Every file but `config` is named by the SHA-256 of its content, hence immutable, so decoded
// snapshots are kept and a later listing only reads files it has not seen.
import { createHash } from 'node:crypto'
import { forEachLimit } from '../async/for-each-limit.ts'
import type { BlobStore } from '../storage/blob-store.ts'
import { decodeConfig } from './config.ts'
import type { CipherKeys } from './crypto.ts'
import { ResticError } from './errors.ts'
import { listIds, readFile } from './files.ts'
import type { ResticKeyCache } from './key-cache.ts'
import { findMasterKey } from './keys.ts'
import { compareSnapshots, decodeSnapshot, type ResticSnapshot } from './snapshots.ts'
import { openUnpackedJson, type UnpackContext } from './unpacked.ts'

export type { ResticSnapshot } from './snapshots.ts'

export interface ResticOpenOptions {
  readonly signal?: AbortSignal
  /** Share one across opens (e.g. per catalog source) so re-opening does not re-run scrypt. */
  readonly keyCache?: ResticKeyCache
}

/** Snapshot files read at once: they are tiny, so latency (S3) is all that matters. */
const SNAPSHOT_READ_CONCURRENCY = 8

/**
 * A restic repository opened read-only with its password, over a BlobStore: `open` finds the key file the
 * password opens and reads `config`; `listSnapshots` reads only snapshot files it has not read before
 * (kept in memory by ID). Holds the master keys; never log the instance.
 */
export class ResticRepository {
  /** The store's location, for messages. */
  readonly location: string
  /** The repository ID from its config. */
  readonly id: string
  readonly version: 1 | 2
  /** The key file (storage ID) the password opened. */
  readonly keyId: string
  readonly #store: BlobStore
  readonly #unpack: UnpackContext
  readonly #snapshots = new Map<string, ResticSnapshot>()

  private constructor(store: BlobStore, keyId: string, keys: CipherKeys, id: string, version: 1 | 2) {
    this.#store = store
    this.location = store.location
    this.keyId = keyId
    this.id = id
    this.version = version
    this.#unpack = { location: store.location, version, keys }
  }

  /** Finds the key the password opens and reads the config. Throws ResticError (or the signal's abort). */
  static async open(store: BlobStore, password: string, options: ResticOpenOptions = {}): Promise<ResticRepository> {
    const { signal } = options
    const location = store.location
    // config first: a wrong path fails fast, without paying for scrypt.
    const sealedConfig = await readFile(store, 'config', signal)
    if (sealedConfig === null) throw new ResticError('not-a-repository', location, 'config', `${location} is not a restic repository: no config`)
    const master = await findMasterKey(store, password, options)
    const json = await openUnpackedJson({ location, version: 2, keys: master.keys }, 'config', sealedConfig)
    const decoded = decodeConfig(json)
    if (!decoded.ok) throw new ResticError(decoded.code, location, 'config', `${location}config: ${decoded.problem}`)
    return new ResticRepository(store, master.keyId, master.keys, decoded.config.id, decoded.config.version)
  }

  /**
   * Every snapshot, oldest first. A second call lists snapshots/ again but reads only files it has
   * not decoded before; snapshots since removed (`restic forget`) drop out. One unreadable
   * snapshot fails the whole call (ResticError naming it): a silently shorter list could make a
   * backed-up volume look like it has no backup.
   */
  async listSnapshots(signal?: AbortSignal): Promise<ResticSnapshot[]> {
    const ids = await listIds(this.#store, 'snapshots', signal)
    const listed = new Set(ids)
    for (const id of this.#snapshots.keys()) if (!listed.has(id)) this.#snapshots.delete(id)
    const unread = ids.filter((id) => !this.#snapshots.has(id))
    await forEachLimit(unread, SNAPSHOT_READ_CONCURRENCY, async (id) => {
      const snapshot = await this.#readSnapshot(id, signal)
      if (snapshot !== null) this.#snapshots.set(id, snapshot)
    })
    return ids.flatMap((id) => this.#snapshots.get(id) ?? []).sort(compareSnapshots)
  }

  async #readSnapshot(id: string, signal: AbortSignal | undefined): Promise<ResticSnapshot | null> {
    const file = `snapshots/${id}`
    const sealed = await readFile(this.#store, file, signal)
    if (sealed === null) return null // forgotten between listing and reading
    const json = await openUnpackedJson(this.#unpack, file, sealed)
    // The name is the content's hash; checking it (after the MAC, which diagnoses damage) is what
    // makes caching by name safe against a valid file stored under another name.
    if (createHash('sha256').update(sealed).digest('hex') !== id) {
      throw new ResticError('corrupt', this.location, file, `restic file ${this.location}${file} is corrupt: its content does not match its name`)
    }
    const snapshot = decodeSnapshot(id, json)
    if (typeof snapshot === 'string') throw new ResticError('invalid', this.location, file, `${this.location}${file} is not a restic snapshot: ${snapshot}`)
    return snapshot
  }
}
