// From manifest records to what the catalog wants: merge every live manifest content by manifest
// ID (strictly newer `modified` wins, first seen on a tie, tombstones drop the ID), keep snapshot
// manifests, group them by source labels and pick the newest complete one per source.
import type { ManifestRecord, SnapshotFacts } from './manifest-content.ts'
import type { KopiaManifestsRead, KopiaSnapshotsRead } from './read-summary.ts'
import { compareInstants, formatRfc3339Nano } from '../rfc3339.ts'

export interface KopiaSourceSnapshots {
  readonly username: string
  readonly hostname: string
  readonly path: string
  /** Complete snapshots of this source. */
  readonly snapshots: number
  readonly newest: {
    readonly id: string
    /** RFC 3339, UTC, nine fraction digits. */
    readonly startTime: string
    readonly endTime: string
    readonly sizeBytes?: number
    readonly files?: number
    readonly dirs?: number
  }
}

/**
 * The winning record of every manifest ID, tombstones included (kopia's committed entries before
 * it filters deleted ones). `contents` should come in a stable order so that ties resolve the
 * same way each poll.
 */
export function mergeManifestRecords(contents: Iterable<readonly ManifestRecord[]>): Map<string, ManifestRecord> {
  const merged = new Map<string, ManifestRecord>()
  for (const records of contents) {
    for (const record of records) {
      const previous = merged.get(record.id)
      if (previous === undefined || compareInstants(record.modified, previous.modified) > 0) merged.set(record.id, record)
    }
  }
  return merged
}

/** Live manifests by ID: mergeManifestRecords without the IDs whose winner is a tombstone. */
export function mergeManifests(contents: Iterable<readonly ManifestRecord[]>): Map<string, ManifestRecord> {
  const merged = mergeManifestRecords(contents)
  for (const [id, record] of merged) if (record.deleted) merged.delete(id)
  return merged
}

/** One manifest ID as the merged view has it: its newest entry, live or a tombstone. */
export interface KopiaManifest {
  readonly id: string
  /** RFC 3339, UTC, nine fraction digits. */
  readonly modified: string
  readonly deleted: boolean
  /** The `type` label; '' for tombstones. */
  readonly type: string
  /** Labels of live non-snapshot manifests; null for snapshots (see ManifestRecord.labels) and tombstones. */
  readonly labels: Readonly<Record<string, string>> | null
}

/** The merged view (mergeManifestRecords' result) as a list sorted by manifest ID. */
export function manifestView(merged: ReadonlyMap<string, ManifestRecord>): KopiaManifest[] {
  return [...merged.values()]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((r) => ({ id: r.id, modified: formatRfc3339Nano(r.modified), deleted: r.deleted, type: r.type, labels: r.labels }))
}

/**
 * Counts of a merged view (tombstones included): manifests live by type and deleted, snapshots
 * complete, incomplete and unreadable. `sources` is left to the caller (summarizeSources knows it).
 */
export function countManifests(merged: ReadonlyMap<string, ManifestRecord>): { manifests: KopiaManifestsRead; snapshots: Omit<KopiaSnapshotsRead, 'sources'> } {
  const byType = new Map<string, number>()
  let deleted = 0
  let complete = 0
  let incomplete = 0
  let unreadable = 0
  for (const record of merged.values()) {
    if (record.deleted) {
      deleted++
      continue
    }
    byType.set(record.type, (byType.get(record.type) ?? 0) + 1)
    if (record.type !== 'snapshot') continue
    if (record.snapshot === null) unreadable++
    else if (record.snapshot.incomplete) incomplete++
    else complete++
  }
  const liveByType = Object.fromEntries([...byType].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  return { manifests: { ids: merged.size, live: merged.size - deleted, deleted, liveByType }, snapshots: { complete, incomplete, unreadable } }
}

interface Candidate {
  readonly id: string
  readonly modified: ManifestRecord['modified']
  readonly facts: SnapshotFacts
}

/** Greatest start time, then end time, then modification, then ID: the same winner on every poll. */
function isNewer(a: Candidate, b: Candidate): boolean {
  const byStart = compareInstants(a.facts.start, b.facts.start)
  if (byStart !== 0) return byStart > 0
  const byEnd = compareInstants(a.facts.end, b.facts.end)
  if (byEnd !== 0) return byEnd > 0
  const byModified = compareInstants(a.modified, b.modified)
  if (byModified !== 0) return byModified > 0
  return a.id > b.id
}

/** Per `username@hostname:path` source of the live records: its complete snapshots and the newest one; sorted by source. */
export function summarizeSources(live: Iterable<ManifestRecord>): KopiaSourceSnapshots[] {
  const sources = new Map<string, { count: number; newest: Candidate }>()
  for (const record of live) {
    const facts = record.snapshot
    if (facts === null || facts.incomplete) continue
    const key = facts.source
    const candidate: Candidate = { id: record.id, modified: record.modified, facts }
    const source = sources.get(key)
    if (source === undefined) sources.set(key, { count: 1, newest: candidate })
    else {
      source.count++
      if (isNewer(candidate, source.newest)) source.newest = candidate
    }
  }
  const result: KopiaSourceSnapshots[] = []
  for (const key of [...sources.keys()].sort()) {
    const { count, newest } = sources.get(key) as { count: number; newest: Candidate }
    const f = newest.facts
    result.push({
      username: f.username,
      hostname: f.hostname,
      path: f.path,
      snapshots: count,
      newest: {
        id: newest.id,
        startTime: formatRfc3339Nano(f.start),
        endTime: formatRfc3339Nano(f.end),
        ...(f.sizeBytes === undefined ? {} : { sizeBytes: f.sizeBytes }),
        ...(f.files === undefined ? {} : { files: f.files }),
        ...(f.dirs === undefined ? {} : { dirs: f.dirs }),
      },
    })
  }
  return result
}
