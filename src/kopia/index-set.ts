// Which index blobs describe the repository now. Format v2/v3 (epoch manager): range checkpoints,
// then per epoch either its single-epoch compaction (settled epochs only) or all its uncompacted
// blobs. Format v1 (legacy): every `n` blob minus those a valid compaction log supersedes.
// Reading a superseded blob only repeats entries (the merge is newest-wins and idempotent);
// missing a live one loses snapshots, so every open choice below leans towards including.
import { type BlobContext, corrupt } from './errors.ts'
import { epochNumber, epochRange, firstCompleteSet, longestRangeChain, type Named, type RangeSet } from './epoch-rules.ts'

/** Kopia treats the two newest epochs as unsettled: their compactions may still be in flight. */
const UNSETTLED_EPOCHS = 2

export interface EpochSelection<T> {
  readonly active: T[]
  readonly writeEpoch: number
  /** Unix seconds; deleted entries at or before it are gone for good (0 = none). */
  readonly deletionWatermark: number
}

/** `blobs`: one listing of the `x` prefix, in listing order. */
export function selectEpochIndexes<T extends Named>(blobs: readonly T[]): EpochSelection<T> {
  const byKind = (letter: string) => blobs.filter((b) => b.id.charAt(1) === letter)
  let writeEpoch = 0
  for (const marker of byKind('e')) writeEpoch = Math.max(writeEpoch, epochNumber(marker.id) ?? 0)
  let deletionWatermark = 0
  for (const w of byKind('w')) {
    const seconds = /^xw[+-]?\d+$/.test(w.id) ? Number(w.id.slice(2)) : Number.NaN
    if (Number.isFinite(seconds)) deletionWatermark = Math.max(deletionWatermark, seconds)
  }

  const compactions = new Map<number, T[]>()
  for (const [epoch, members] of groupBy(byKind('s'), (b) => epochNumber(b.id))) {
    const set = firstCompleteSet(members)
    if (set) compactions.set(epoch, set)
  }
  const ranges: RangeSet<T>[] = []
  for (const [, members] of groupBy(byKind('r'), (b) => { const r = epochRange(b.id); return r ? `${r[0]}_${r[1]}` : null })) {
    const set = firstCompleteSet(members)
    const r = set && set[0] ? epochRange(set[0].id) : null
    if (set && r) ranges.push({ min: r[0], max: r[1], blobs: set })
  }
  const uncompacted = groupBy(byKind('n'), (b) => epochNumber(b.id))

  const active: T[] = []
  let start = 0
  for (const range of longestRangeChain(ranges)) {
    if (range.max > start) {
      active.push(...range.blobs)
      start = range.max + 1
    }
  }
  // Kopia walks every epoch from `start` to writeEpoch + 1; only epochs with listed blobs can add
  // anything (and a bogus huge epoch number must not mean a billion iterations). An uncompacted
  // blob beyond writeEpoch + 1 can only come from a marker this listing missed: it is read too.
  const epochs = [...new Set([...uncompacted.keys(), ...compactions.keys()])].filter((e) => e >= start).sort((a, b) => a - b)
  for (const epoch of epochs) {
    const compacted = compactions.get(epoch)
    if (epoch <= writeEpoch - UNSETTLED_EPOCHS && compacted) active.push(...compacted)
    else active.push(...(uncompacted.get(epoch) ?? []))
  }
  return { active, writeEpoch, deletionWatermark }
}

function groupBy<T, K>(items: readonly T[], keyOf: (item: T) => K | null): Map<K, T[]> {
  const groups = new Map<K, T[]>()
  for (const item of items) {
    const key = keyOf(item)
    if (key === null) continue
    const group = groups.get(key)
    if (group) group.push(item)
    else groups.set(key, [item])
  }
  return groups
}

export interface CompactionLog {
  readonly inputs: readonly string[]
  readonly outputs: readonly string[]
}

/** A legacy compaction log blob (`m…`, decrypted): `{"inputMetadata":[{"id":…}],"outputMetadata":[…]}`. */
export function parseCompactionLog(plaintext: Buffer, ctx: BlobContext): CompactionLog {
  let json: unknown
  try {
    json = JSON.parse(plaintext.toString('utf8'))
  } catch (error) {
    throw corrupt(ctx, 'compaction log is not JSON', error)
  }
  const ids = (value: unknown, field: string): string[] => {
    if (value === null || value === undefined) return []
    if (!Array.isArray(value)) throw corrupt(ctx, `compaction log ${field} is not an array`)
    return value.map((m: unknown) => {
      const id = typeof m === 'object' && m !== null ? (m as Record<string, unknown>)['id'] : undefined
      if (typeof id !== 'string') throw corrupt(ctx, `compaction log ${field} has an entry without an id`)
      return id
    })
  }
  const obj = typeof json === 'object' && json !== null ? (json as Record<string, unknown>) : {}
  return { inputs: ids(obj['inputMetadata'], 'inputMetadata'), outputs: ids(obj['outputMetadata'], 'outputMetadata') }
}

/** Legacy selection: a log counts only when all its outputs are listed; then its inputs drop out. */
export function selectLegacyIndexes<T extends Named>(indexBlobs: readonly T[], logs: readonly CompactionLog[]): T[] {
  const listed = new Set(indexBlobs.map((b) => b.id))
  const superseded = new Set<string>()
  for (const log of logs) {
    if (log.outputs.every((id) => listed.has(id))) for (const id of log.inputs) superseded.add(id)
  }
  return indexBlobs.filter((b) => !superseded.has(b.id))
}
