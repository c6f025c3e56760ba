// What the catalog keeps of Kopia sources: snapshot count, the newest snapshot's start time and
// size, over one or several `username@hostname:/path` sources.
import type { KopiaSourceSnapshots } from '../kopia/repository.ts'
import type { SnapshotSummary } from './catalog-entry.ts'

/**
 * One PVC's summary over its Kopia sources: the snapshot count summed, and the newest snapshot's start
 * time (normalized to millisecond UTC, like every other source), size and identity. No source: `{
 * snapshots: 0 }`, which is no backup.
 */
export function summarizeKopiaSources(sources: readonly KopiaSourceSnapshots[]): SnapshotSummary {
  let count = 0
  let newestSource: KopiaSourceSnapshots | undefined
  for (const source of sources) {
    count += source.snapshots
    // startTime is UTC with nine fraction digits, so strings compare as instants.
    if (newestSource === undefined || source.newest.startTime > newestSource.newest.startTime) newestSource = source
  }
  if (newestSource === undefined) return { snapshots: 0 }
  const newest = newestSource.newest
  return {
    snapshots: count,
    // Millisecond UTC like every other source, so that entries compare as strings.
    newest: new Date(Date.parse(`${newest.startTime.slice(0, 23)}Z`)).toISOString(),
    ...(newest.sizeBytes !== undefined ? { sizeBytes: newest.sizeBytes } : {}),
    identity: { username: newestSource.username, hostname: newestSource.hostname },
  }
}
