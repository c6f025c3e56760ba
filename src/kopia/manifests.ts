// From manifest records to what the catalog wants: merge every live manifest content by manifest
// ID (strictly newer `modified` wins, first seen on a tie, tombstones drop the ID), keep snapshot
// manifests, group them by source labels and pick the newest complete one per source.
import type { ManifestRecord, SnapshotFacts } from './manifest-content.ts'
import { compareInstants, formatRfc3339Nano } from './rfc3339.ts'

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

/** Live manifests by ID. `contents` should come in a stable order so that ties resolve the same way each poll. */
export function mergeManifests(contents: Iterable<readonly ManifestRecord[]>): Map<string, ManifestRecord> {
  const merged = new Map<string, ManifestRecord>()
  for (const records of contents) {
    for (const record of records) {
      const previous = merged.get(record.id)
      if (previous === undefined || compareInstants(record.modified, previous.modified) > 0) merged.set(record.id, record)
    }
  }
  for (const [id, record] of merged) if (record.deleted) merged.delete(id)
  return merged
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
