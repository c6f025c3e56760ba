// Test-only: manifest entries as kopia writes them (labels, Go-style RFC 3339 times, snapshot
// payload with stats and root directory summary).
import { randomBytes } from 'node:crypto'

export interface ManifestEntryJson {
  readonly id: string
  readonly labels: Readonly<Record<string, string>> | null
  readonly modified: string
  readonly deleted?: true
  readonly data: unknown
}

export interface SnapshotSpec {
  readonly username: string
  readonly hostname: string
  readonly path: string
  /** RFC 3339 as Go writes it (trimmed fraction is fine). */
  readonly startTime: string
  readonly endTime?: string
  /** 'checkpoint', 'canceled', 'limit reached' */
  readonly incomplete?: string
  readonly sizeBytes?: number
  readonly files?: number
  readonly dirs?: number
  readonly description?: string
}

/** Go's time.RFC3339Nano: fraction with trailing zeros trimmed, omitted when zero. */
export function goTime(unixSeconds: number, nanos = 0): string {
  const base = new Date(unixSeconds * 1000).toISOString().slice(0, 19)
  const fraction = nanos === 0 ? '' : `.${String(nanos).padStart(9, '0').replace(/0+$/, '')}`
  return `${base}${fraction}Z`
}

export function newManifestId(): string {
  return randomBytes(16).toString('hex')
}

export function snapshotEntry(spec: SnapshotSpec, modified: string, id = newManifestId()): ManifestEntryJson {
  const size = spec.sizeBytes ?? 1_000_000
  const files = spec.files ?? 10
  const dirs = spec.dirs ?? 2
  const endTime = spec.endTime ?? spec.startTime
  return {
    id,
    labels: { hostname: spec.hostname, path: spec.path, type: 'snapshot', username: spec.username },
    modified,
    data: {
      id: '',
      source: { host: spec.hostname, userName: spec.username, path: spec.path },
      description: spec.description ?? '',
      startTime: spec.startTime,
      endTime,
      stats: { totalSize: size, excludedTotalSize: 0, fileCount: files, cachedFiles: 0, nonCachedFiles: files, dirCount: dirs, excludedFileCount: 0, excludedDirCount: 0, ignoredErrorCount: 0, errorCount: 0 },
      ...(spec.incomplete === undefined ? {} : { incomplete: spec.incomplete }),
      rootEntry: {
        name: spec.path.split('/').pop() ?? '',
        type: 'd',
        mode: '0755',
        mtime: spec.startTime,
        obj: `k${randomBytes(16).toString('hex')}`,
        summ: { size, files, symlinks: 0, dirs, maxTime: spec.startTime, numFailed: 0 },
      },
    },
  }
}

export function tombstone(id: string, modified: string): ManifestEntryJson {
  return { id, labels: null, modified, deleted: true, data: null }
}
