// Naming rules of kopia's epoch manager: epoch numbers and ranges in blob IDs, "complete sets" of
// compaction outputs (`…-s<set>-c<count>`), and the longest chain of range checkpoints.
// Checked against kopia's own test tables (vectors.json).

export interface Named {
  readonly id: string
}

// Go's strconv.Atoi: optional sign, decimal digits, nothing else.
function atoi(text: string): number | null {
  return /^[+-]?\d+$/.test(text) ? Number(text) : null
}

/** `xn12_…` -> 12: cut at the first '_', drop leading non-digits, parse the rest. */
export function epochNumber(blobId: string): number | null {
  const cut = blobId.indexOf('_')
  const head = cut < 0 ? blobId : blobId.slice(0, cut)
  return atoi(head.replace(/^\D+/, ''))
}

/** `xr0_6_…` -> [0, 6]; needs at least three '_'-separated parts. */
export function epochRange(blobId: string): [number, number] | null {
  const parts = blobId.split('_')
  if (parts.length < 3) return null
  const min = atoi((parts[0] ?? '').replace(/^\D+/, ''))
  const max = atoi(parts[1] ?? '')
  return min === null || max === null ? null : [min, max]
}

/**
 * Kopia's completeset.FindAll, in listing order: a name `a-s<set>-c<n>` belongs to set `s<set>`,
 * complete once n members are seen; any other name is a complete set of its own.
 */
export function completeSets<T extends Named>(blobs: readonly T[]): T[][] {
  const open = new Map<string, T[]>()
  const complete: T[][] = []
  for (const blob of blobs) {
    const parts = blob.id.split('-')
    const count = parts.length >= 3 && parts[1]?.startsWith('s') && parts[2]?.startsWith('c') ? atoi(parts[2].slice(1)) : null
    if (count === null || parts[1] === undefined) {
      complete.push([blob])
      continue
    }
    const members = open.get(parts[1]) ?? []
    members.push(blob)
    open.set(parts[1], members)
    if (members.length === count) complete.push(members)
  }
  return complete
}

/** The first complete set of compaction outputs in listing order (completeSets), or null when none is complete yet. */
export function firstCompleteSet<T extends Named>(blobs: readonly T[]): T[] | null {
  return completeSets(blobs)[0] ?? null
}

export interface RangeSet<T> {
  readonly min: number
  readonly max: number
  readonly blobs: readonly T[]
}

/**
 * The chain of range checkpoints starting at epoch 0 that reaches the highest epoch; among
 * chains reaching the same epoch, the one with fewer links (kopia's findLongestRangeCheckpoint).
 */
export function longestRangeChain<T>(ranges: readonly RangeSet<T>[]): RangeSet<T>[] {
  const byMin = new Map<number, RangeSet<T>[]>()
  for (const r of ranges) byMin.set(r.min, [...(byMin.get(r.min) ?? []), r])
  const memo = new Map<number, RangeSet<T>[]>()
  const from = (start: number): RangeSet<T>[] => {
    const known = memo.get(start)
    if (known) return known
    memo.set(start, []) // a range with max < min cannot loop forever
    let best: RangeSet<T>[] = []
    let bestMax = 0
    for (const r of byMin.get(start) ?? []) {
      const chain = [r, ...(r.max + 1 > start ? from(r.max + 1) : [])]
      const reach = chain[chain.length - 1]?.max ?? 0
      if (reach > bestMax || (reach === bestMax && chain.length < best.length)) {
        best = chain
        bestMax = reach
      }
    }
    memo.set(start, best)
    return best
  }
  return from(0)
}
