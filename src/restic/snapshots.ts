// A restic snapshot file's JSON (doc/design.rst "Snapshots") reduced to what a backup catalog
// needs. Unknown fields are ignored, as restic's own JSON decoding does.
import { isStorageId } from './files.ts'

export interface ResticSnapshot {
  /** The snapshot file name (hex SHA-256 of the file). */
  readonly id: string
  /** Exactly as restic wrote it (RFC 3339 with up to nanoseconds and the writer's offset). */
  readonly time: string
  readonly timeMs: number
  readonly hostname: string
  readonly username?: string
  /** Sorted (byte order), as restic itself presents them: `restic snapshots` sorts every snapshot's paths. */
  readonly paths: readonly string[]
  /** In the order the snapshot file has them. */
  readonly tags: readonly string[]
  /** Root tree blob ID. */
  readonly tree: string
  /** summary.total_bytes_processed, which only restic ≥ 0.17 records; absent otherwise. */
  readonly sizeBytes?: number
}

// Go's time.RFC3339Nano as restic's JSON encoder writes it.
const RFC3339 = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/

/** Milliseconds since the epoch (sub-millisecond digits dropped), or null when not RFC 3339. */
export function parseResticTime(time: string): number | null {
  const match = RFC3339.exec(time)
  if (!match) return null
  const [, date, clock, fraction = '', zone] = match
  // Date.parse handles exactly three fraction digits, so normalize to that.
  const ms = Date.parse(`${date}T${clock}.${fraction.padEnd(3, '0').slice(0, 3)}${zone}`)
  return Number.isNaN(ms) ? null : ms
}

function stringList(value: unknown): string[] | null {
  // Go encodes a nil slice as null; restic omits empty tags entirely.
  if (value === undefined || value === null) return []
  return Array.isArray(value) && value.every((v) => typeof v === 'string') ? [...value] : null
}

/** Go's sort.Strings order: UTF-8 bytes, which differs from JS's UTF-16 order beyond the BMP. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

/** The snapshot, or why the JSON is not one. */
export function decodeSnapshot(id: string, json: unknown): ResticSnapshot | string {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return 'not a JSON object'
  const doc = json as Record<string, unknown>
  const { time, tree, hostname, username, summary } = doc
  if (typeof time !== 'string') return 'no "time"'
  const timeMs = parseResticTime(time)
  if (timeMs === null) return `"time" ${JSON.stringify(time)} is not RFC 3339`
  if (typeof tree !== 'string' || !isStorageId(tree)) return 'no valid "tree"'
  const paths = stringList(doc['paths'])
  if (paths === null) return '"paths" is not a list of strings'
  const tags = stringList(doc['tags'])
  if (tags === null) return '"tags" is not a list of strings'
  if (hostname !== undefined && typeof hostname !== 'string') return '"hostname" is not a string'
  if (username !== undefined && typeof username !== 'string') return '"username" is not a string'
  const total = typeof summary === 'object' && summary !== null ? (summary as Record<string, unknown>)['total_bytes_processed'] : undefined
  const sizeBytes = typeof total === 'number' && Number.isSafeInteger(total) && total >= 0 ? total : undefined
  return Object.freeze({
    id,
    time,
    timeMs,
    hostname: hostname ?? '',
    ...(username === undefined || username === '' ? {} : { username }),
    paths: Object.freeze(paths.sort(byteOrder)),
    tags: Object.freeze(tags),
    tree,
    ...(sizeBytes === undefined ? {} : { sizeBytes }),
  })
}

/** Oldest first; equal times by ID, so the order is stable across polls. */
export function compareSnapshots(a: ResticSnapshot, b: ResticSnapshot): number {
  return a.timeMs - b.timeMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
}
