// When a repository with a known backup is examined again (catalog.backupRecheckInterval), pure part.
// Each repository gets a fixed phase in the recheck period from a hash of its name, and is due at the
// first poll at or after each `phase + k * period`. So every repository is re-examined once per period
// (plus at most one poll interval), and the re-checks spread evenly over the polls whatever the poll
// interval, its jitter, a failed poll or a reload that changes either interval: a poll `d` ms after the
// previous one examines about `d / period` of them, and a poll after a gap of a whole period all.

/** The setting as the sources read it at every poll (a reload changes it in place). */
export interface RecheckSetting {
  /** catalog.backupRecheckInterval in ms; 0 re-examines every repository every poll. */
  readonly backupRecheckMs: number
}

/**
 * FNV-1a, 32 bits, then murmur3's finalizer: stable across processes and releases, so a repository
 * keeps its phase. FNV-1a alone leaves names that differ in their last characters (pvc-001, pvc-002)
 * bunched in the high bits that pick the phase; the finalizer spreads them evenly.
 */
function stableHash(text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  hash ^= hash >>> 16
  hash = Math.imul(hash, 0x85ebca6b)
  hash ^= hash >>> 13
  hash = Math.imul(hash, 0xc2b2ae35)
  hash ^= hash >>> 16
  return hash >>> 0
}

/** The phase of repository `key` (e.g. `namespace/pvc`) in a period of `periodMs`: a number in [0, periodMs). */
export function recheckPhaseMs(key: string, periodMs: number): number {
  return (stableHash(key) / 2 ** 32) * periodMs
}

/**
 * Whether repository `key`, whose answer at the poll at `previousMs` was a known backup, is examined
 * again at the poll at `nowMs` (both in ms of one monotonic clock): true when one of its recheck times
 * (`phase + k * periodMs`) lies in (previousMs, nowMs]; always true with `periodMs` <= 0.
 */
export function recheckDue(key: string, previousMs: number, nowMs: number, periodMs: number): boolean {
  if (periodMs <= 0) return true
  const phase = recheckPhaseMs(key, periodMs)
  return Math.floor((nowMs - phase) / periodMs) > Math.floor((previousMs - phase) / periodMs)
}
