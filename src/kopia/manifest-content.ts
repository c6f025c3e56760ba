// One manifest content (gunzipped): `{"entries":[{id, labels, modified, deleted?, data}, …]}`,
// reduced to the few fields a lister keeps; the parsed JSON is dropped at once. Like kopia, the
// `entries` key matches case-insensitively, a repeated one is an error, and any structural error
// fails the content. (Measured: one whole-document JSON.parse beats scanning and parsing entry by
// entry, GC included, at the cost of a transient heap about the size of the text.)
import { asObject } from '../json.ts'
import { errorMessage } from '../errors.ts'
import { type BlobContext, corrupt } from './errors.ts'
import { type Instant, parseRfc3339 } from './rfc3339.ts'

export interface SnapshotFacts {
  /** username, hostname and path joined by NUL: the grouping key. */
  readonly source: string
  readonly username: string
  readonly hostname: string
  readonly path: string
  readonly start: Instant
  readonly end: Instant
  readonly incomplete: boolean
  readonly sizeBytes: number | undefined
  readonly files: number | undefined
  readonly dirs: number | undefined
}

export interface ManifestRecord {
  readonly id: string
  readonly modified: Instant
  readonly deleted: boolean
  /** The `type` label ('snapshot', 'policy', 'maintenance', 'user', ...); '' for tombstones and unlabelled entries. */
  readonly type: string
  /**
   * All labels of a live manifest that is not a snapshot (policies, maintenance, users: a handful
   * per repository); null for snapshots, whose labels are their source (kept in `snapshot`), so
   * that 100,000 snapshot manifests do not each keep a labels object, and for tombstones.
   */
  readonly labels: Readonly<Record<string, string>> | null
  /** For `type: snapshot` manifests with a readable payload, else null. */
  readonly snapshot: SnapshotFacts | null
}

const QUOTE = 0x22
const BACKSLASH = 0x5c

function isSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
}

/** Scanner over the bytes; every method returns the position after what it consumed. */
class Scanner {
  readonly data: Buffer
  readonly #ctx: BlobContext

  constructor(data: Buffer, ctx: BlobContext) {
    this.data = data
    this.#ctx = ctx
  }

  fail(at: number, what: string): never {
    throw corrupt(this.#ctx, `manifest content is not valid: ${what} at byte ${at}`)
  }

  space(at: number): number {
    while (isSpace(this.data[at])) at++
    return at
  }

  expect(at: number, char: string): number {
    at = this.space(at)
    if (this.data[at] !== char.charCodeAt(0)) this.fail(at, at >= this.data.length ? `unexpected end, wanted '${char}'` : `wanted '${char}'`)
    return at + 1
  }

  /** `at` is on the opening quote. */
  string(at: number): number {
    let i = at + 1
    for (;;) {
      const quote = this.data.indexOf(QUOTE, i)
      if (quote < 0) this.fail(at, 'unterminated string')
      let backslashes = 0
      while (this.data[quote - 1 - backslashes] === BACKSLASH) backslashes++
      if (backslashes % 2 === 0) return quote + 1
      i = quote + 1
    }
  }

  /** Skips one JSON value of any kind; validity of scalars is left to JSON.parse where it matters. */
  value(at: number): number {
    at = this.space(at)
    const c = this.data[at]
    if (c === QUOTE) return this.string(at)
    if (c === 0x7b || c === 0x5b) {
      let depth = 0
      for (let i = at; i < this.data.length; i++) {
        const b = this.data[i]
        if (b === QUOTE) i = this.string(i) - 1
        else if (b === 0x7b || b === 0x5b) depth++
        else if (b === 0x7d || b === 0x5d) if (--depth === 0) return i + 1
      }
      this.fail(at, 'unterminated object or array')
    }
    let i = at
    while (i < this.data.length && !isSpace(this.data[i]) && this.data[i] !== 0x2c && this.data[i] !== 0x7d && this.data[i] !== 0x5d) i++
    if (i === at) this.fail(at, 'missing value')
    return i
  }
}

/**
 * The top-level keys of the content in order, validating the structure; values are skipped, not
 * parsed. Used only when a cheap check suggests a repeated `entries` key, which JSON.parse would
 * silently collapse but kopia rejects.
 */
export function topLevelKeys(data: Buffer, ctx: BlobContext): string[] {
  const s = new Scanner(data, ctx)
  const keys: string[] = []
  let at = s.space(s.expect(0, '{'))
  if (data[at] === 0x7d) return keys
  for (;;) {
    at = s.space(at)
    if (data[at] !== QUOTE) s.fail(at, 'wanted a field name')
    const keyEnd = s.string(at)
    keys.push(JSON.parse(data.toString('utf8', at, keyEnd)) as string)
    at = s.space(s.value(s.expect(keyEnd, ':')))
    if (data[at] === 0x2c) { at++; continue }
    s.expect(at, '}')
    return keys
  }
}

const ENTRIES_KEY = /"entries"\s*:/gi

/**
 * The `entries` array. One native JSON.parse of the whole content is the fastest way through a
 * compacted content (~70 MB for 90,000 manifests); kopia's decoder matches the key
 * case-insensitively and rejects a repeated one, checked here without a second full parse.
 */
function entriesOf(data: Buffer, ctx: BlobContext): unknown[] {
  let text: string
  let doc: unknown
  try {
    text = data.toString('utf8')
  } catch (error) {
    throw corrupt(ctx, `manifest content of ${data.length} bytes is too large to decode`, error)
  }
  try {
    doc = JSON.parse(text)
  } catch (error) {
    throw corrupt(ctx, `manifest content is not valid JSON: ${errorMessage(error)}`, error)
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw corrupt(ctx, 'manifest content is not a JSON object')
  const record = doc as Record<string, unknown>
  const keys = Object.keys(record).filter((k) => k.toLowerCase() === 'entries')
  const mentions = text.match(ENTRIES_KEY)?.length ?? 0
  if (keys.length > 1 || (mentions > 1 && topLevelKeys(data, ctx).filter((k) => k.toLowerCase() === 'entries').length > 1)) {
    throw corrupt(ctx, 'manifest content is not valid: repeated entries field')
  }
  const entries = keys[0] === undefined ? [] : record[keys[0]]
  if (!Array.isArray(entries)) throw corrupt(ctx, 'manifest content is not valid: entries is not an array')
  return entries
}

function field(obj: unknown, name: string): unknown {
  return asObject(obj)?.[name]
}

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : ''
}

/** The facts a lister needs from a snapshot payload; null if its times are unreadable. */
function snapshotFacts(labels: unknown, data: unknown): SnapshotFacts | null {
  const start = parseRfc3339(text(field(data, 'startTime')))
  const end = parseRfc3339(text(field(data, 'endTime')))
  if (start === null || end === null) return null
  // kopia lists `snapshot list` sizes from the root directory summary, else the root entry.
  const root = field(data, 'rootEntry')
  const summary = field(root, 'summ')
  const stats = field(data, 'stats')
  const username = text(field(labels, 'username'))
  const hostname = text(field(labels, 'hostname'))
  const path = text(field(labels, 'path'))
  return {
    source: `${username}\u0000${hostname}\u0000${path}`,
    username,
    hostname,
    path,
    start,
    end,
    incomplete: text(field(data, 'incomplete')) !== '',
    sizeBytes: count(field(summary, 'size')) ?? count(field(root, 'size')) ?? count(field(stats, 'totalSize')),
    files: count(field(summary, 'files')) ?? count(field(stats, 'fileCount')),
    dirs: count(field(summary, 'dirs')) ?? count(field(stats, 'dirCount')),
  }
}

/** String-valued labels only (kopia's labels are map[string]string); null when there is no labels object. */
function stringLabels(labels: unknown): Record<string, string> | null {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) return null
  const copy: Record<string, string> = {}
  for (const [key, value] of Object.entries(labels)) if (typeof value === 'string') copy[key] = value
  return copy
}

/** Decodes every entry of one content; a malformed entry fails the whole content, as in kopia. */
export function parseManifestContent(data: Buffer, ctx: BlobContext): ManifestRecord[] {
  const records: ManifestRecord[] = []
  for (const entry of entriesOf(data, ctx)) {
    const id = field(entry, 'id')
    const modified = parseRfc3339(text(field(entry, 'modified')))
    if (typeof id !== 'string' || id === '' || modified === null) throw corrupt(ctx, `manifest entry #${records.length} has no id or no valid modified time`)
    const deleted = field(entry, 'deleted') === true
    const labels = field(entry, 'labels')
    const type = deleted ? '' : text(field(labels, 'type'))
    const snapshot = type === 'snapshot' ? snapshotFacts(labels, field(entry, 'data')) : null
    records.push({ id, modified, deleted, type, labels: deleted || type === 'snapshot' ? null : stringLabels(labels), snapshot })
  }
  return records
}
