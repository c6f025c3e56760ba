// One manifest content (gunzipped): `{"entries":[{id, labels, modified, deleted?, data}, …]}`,
// reduced to the few fields a lister keeps. A compacted content of 100,000 manifests is ~77 MB of
// JSON: one JSON.parse of it held the text as a string and its whole tree at once (~500 MB of peak
// RSS), so it is decoded incrementally instead (ManifestContentParser): entries are JSON.parsed in
// batches of about 128 KiB, cut where kopia's compact JSON puts `},{` between two entries (the
// batch's own parse proves the cut), with a byte scan where that does not hold; each entry is
// reduced to its record at once. Measured on that content: the CPU time of the single parse (a byte
// scan of every entry cost ~25% more), a fraction of its memory. Like kopia, the `entries` key
// matches case-insensitively, a repeated one is an error, and any structural error or malformed
// entry fails the content.
import { asObject } from '../json.ts'
import { BACKSLASH, CLOSE_ARRAY, CLOSE_OBJECT, COLON, COMMA, OPEN_ARRAY, OPEN_OBJECT, QUOTE } from '../json-syntax.ts'
import { errorMessage } from '../errors.ts'
import { type BlobContext, corrupt } from './errors.ts'
import { type Instant, parseRfc3339 } from '../rfc3339.ts'

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

/** One parsed entry as a record, or null when it has no id or no valid modified time (kopia fails the content). */
function recordOf(entry: unknown): ManifestRecord | null {
  const id = field(entry, 'id')
  const modified = parseRfc3339(text(field(entry, 'modified')))
  if (typeof id !== 'string' || id === '' || modified === null) return null
  const deleted = field(entry, 'deleted') === true
  const labels = field(entry, 'labels')
  const type = deleted ? '' : text(field(labels, 'type'))
  const snapshot = type === 'snapshot' ? snapshotFacts(labels, field(entry, 'data')) : null
  return { id, modified, deleted, type, labels: deleted || type === 'snapshot' ? null : stringLabels(labels), snapshot }
}


/** Entries are JSON.parsed in batches of about this many bytes: large enough that the parse calls cost nothing, small enough that a batch's tree is short-lived young garbage (1 MB batches peaked ~50 MiB higher). */
const BATCH_BYTES = 1 << 17

/** Between two entries in kopia's compact JSON; anywhere else it fails the parse that tries it as one. */
const ENTRY_SEPARATOR = Buffer.from('},{')

function isSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
}

/** Where the scan is in the content's grammar. */
type Phase =
  | 'start' // before the top-level '{'
  | 'first-key' // after '{': a field name or '}'
  | 'key' // after ',': a field name
  | 'in-key' // inside a field name (a value in progress)
  | 'colon'
  | 'value' // the first byte of a top-level value
  | 'in-value' // inside a top-level value other than an entries array (a value in progress)
  | 'after-value' // ',' or '}'
  | 'first-entry' // after the entries '[': an entry or ']'
  | 'entry' // after ',': an entry
  | 'in-entry' // inside an entry (a value in progress)
  | 'after-entry' // ',' or ']'
  | 'done' // after the final '}': whitespace only
  | 'not-object' // the content does not start with '{': kept whole, to tell invalid JSON from a valid non-object

/**
 * Incremental decoder of one manifest content: push() the gunzipped bytes in chunks of any size,
 * split anywhere, then end() returns the records in order. It scans the top-level object itself
 * and JSON.parses the `entries` array's elements in batches of whole entries (about 128 KiB), cut at
 * a `},{` the batch's parse proves to be a boundary, else found by a byte scan (escapes honoured),
 * reducing each entry to its ManifestRecord at once: it holds the records, one batch and the entry
 * in progress, never the whole text nor its JSON tree. Field names and every value outside
 * `entries` are JSON.parsed as well, so whatever one JSON.parse of the whole text would reject is
 * rejected.
 *
 * Errors are KopiaError `corrupt` naming `ctx`. Invalid JSON throws as soon as it is seen, from push
 * or end ("manifest content is not valid JSON: ..." with the byte offset, or JSON.parse's message and
 * the entries' byte range). The other failures are thrown by end() only, since a later byte could
 * still make the content invalid JSON, which one whole-text parse would have reported first; in this
 * order: a repeated `entries` field, `entries` not an array, the first malformed entry. Do not use a
 * parser again after it threw.
 */
export class ManifestContentParser {
  readonly #ctx: BlobContext
  /** Bytes still needed (from the earliest of the value in progress and the batch) and those not scanned yet. */
  #buf: Buffer = Buffer.alloc(0)
  /** Where #buf is assembled when bytes are carried over from one chunk to the next. */
  #scratch: Buffer = Buffer.alloc(0)
  /** #buf is the start of #scratch (else a pushed chunk, scanned in place). */
  #bufInScratch = false
  /** Content offset of #buf[0], for messages. */
  #offset = 0
  /** Where the scan resumes in #buf. */
  #pos = 0
  #phase: Phase = 'start'
  // The value in progress (field name, top-level value or entry): where it began in #buf, its depth
  // of objects and arrays, and whether the scan is inside a string or a bare scalar.
  #valueStart = -1
  #depth = 0
  #inString = false
  /** The string in progress ended its chunk with a backslash: the next byte is escaped. */
  #escaped = false
  #scalar = false
  /** Whole entries scanned but not parsed yet: [#batchStart, #batchEnd) of #buf; -1 when none. */
  #batchStart = -1
  #batchEnd = -1
  /** The field name just read is `entries`, in any case. */
  #isEntriesKey = false
  #entriesKeys = 0
  #entriesNotArray = false
  #entries = 0
  #entryError: string | undefined
  #records: ManifestRecord[] = []
  /** Position in #buf of a `},{` that turned out not to end an entry: no fast path before the scan passes it. */
  #noCandidateBefore = -1

  constructor(ctx: BlobContext) {
    this.#ctx = ctx
  }

  /** Consumes the next bytes of the content; keeps a reference only to the part still needed. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return
    this.#append(chunk)
    this.#scan()
    this.#parseBatch()
  }

  /** The content's records in order; throws KopiaError `corrupt` as the class describes. */
  end(): ManifestRecord[] {
    const length = this.#buf.length
    if (this.#phase === 'not-object') {
      this.#jsonParse(0, length, '') // throws when it is not JSON at all
      throw corrupt(this.#ctx, 'manifest content is not a JSON object')
    }
    // A bare scalar top-level value (`{"x":1` then the end) ends where the text does.
    if (this.#phase === 'in-value' && this.#scalar) this.#valueDone(length)
    if (this.#phase !== 'done') this.#fail(length, 'unexpected end')
    if (this.#entriesKeys > 1) throw corrupt(this.#ctx, 'manifest content is not valid: repeated entries field')
    if (this.#entriesNotArray) throw corrupt(this.#ctx, 'manifest content is not valid: entries is not an array')
    if (this.#entryError !== undefined) throw corrupt(this.#ctx, this.#entryError)
    return this.#records
  }

  #fail(at: number, what: string): never {
    throw corrupt(this.#ctx, `manifest content is not valid JSON: ${what} at byte ${this.#offset + at}`)
  }

  /** JSON.parse of #buf[start, end), wrapped in `prefix` + `suffix`; invalid JSON throws KopiaError corrupt. */
  #jsonParse(start: number, end: number, prefix: string, suffix = ''): unknown {
    let source: string
    try {
      source = this.#buf.toString('utf8', start, end)
    } catch (error) {
      throw corrupt(this.#ctx, `manifest content: ${end - start} bytes at byte ${this.#offset + start} are too large to decode`, error)
    }
    try {
      return JSON.parse(prefix === '' ? source : `${prefix}${source}${suffix}`)
    } catch (error) {
      throw corrupt(this.#ctx, `manifest content is not valid JSON: ${errorMessage(error)} (bytes ${this.#offset + start}-${this.#offset + end})`, error)
    }
  }

  /**
   * Appends `chunk` after the bytes still needed; positions in #buf move with them. A chunk is
   * scanned in place when nothing is carried over; else both are copied into #scratch, which is
   * reused, so a content's chunks leave no copies behind as garbage.
   */
  #append(chunk: Buffer): void {
    let keep = this.#buf.length
    if (this.#phase === 'not-object') keep = 0
    else {
      if (this.#valueStart >= 0) keep = this.#valueStart
      if (this.#batchStart >= 0) keep = Math.min(keep, this.#batchStart)
    }
    const kept = this.#buf.length - keep
    if (kept === 0) {
      this.#buf = chunk
      this.#bufInScratch = false
    } else {
      const length = kept + chunk.length
      if (this.#scratch.length < length) {
        const bigger = Buffer.allocUnsafe(Math.max(length, 2 * this.#scratch.length))
        this.#buf.copy(bigger, 0, keep)
        this.#scratch = bigger
      } else if (this.#bufInScratch) this.#scratch.copyWithin(0, keep, this.#buf.length)
      else this.#buf.copy(this.#scratch, 0, keep)
      chunk.copy(this.#scratch, kept)
      this.#buf = this.#scratch.subarray(0, length)
      this.#bufInScratch = true
    }
    this.#offset += keep
    this.#pos -= keep
    if (this.#valueStart >= 0) this.#valueStart -= keep
    this.#noCandidateBefore -= keep
    if (this.#batchStart >= 0) {
      this.#batchStart -= keep
      this.#batchEnd -= keep
    }
  }

  /** Starts a value at #buf[i] (not whitespace); returns where its scan continues. */
  #beginValue(i: number): number {
    const b = this.#buf[i]
    if (b === COMMA || b === COLON || b === CLOSE_OBJECT || b === CLOSE_ARRAY) this.#fail(i, 'wanted a value')
    this.#valueStart = i
    this.#depth = b === OPEN_OBJECT || b === OPEN_ARRAY ? 1 : 0
    this.#inString = b === QUOTE
    this.#scalar = this.#depth === 0 && !this.#inString
    return this.#scalar ? i : i + 1
  }

  /**
   * Scans the value in progress from `i`: its end (exclusive), or -1 when #buf ends first (the
   * state is kept for the next chunk). Brackets are only counted; JSON.parse judges the value. A
   * byte loop: a content has millions of short strings, for which indexOf's native call costs more.
   */
  #skipValue(i: number): number {
    const buf = this.#buf
    const n = buf.length
    if (this.#scalar) {
      while (i < n) {
        const b = buf[i]
        if (isSpace(b) || b === COMMA || b === CLOSE_OBJECT || b === CLOSE_ARRAY) {
          this.#scalar = false
          return i
        }
        i++
      }
      return -1
    }
    let depth = this.#depth
    let inString = this.#inString
    if (this.#escaped) {
      this.#escaped = false
      i++
    }
    // Two tight loops (inside a string, outside) branch less per byte than one loop with a flag.
    for (;;) {
      if (inString) {
        for (;;) {
          if (i >= n) {
            this.#escaped = i > n // the byte a backslash escapes comes with the next chunk
            this.#depth = depth
            this.#inString = true
            return -1
          }
          const b = buf[i++]
          if (b === QUOTE) break
          if (b === BACKSLASH) i++
        }
        inString = false
        if (depth === 0) return i
      }
      for (;;) {
        if (i >= n) {
          this.#depth = depth
          this.#inString = false
          return -1
        }
        const b = buf[i++]
        if (b === QUOTE) break
        if (b === OPEN_OBJECT || b === OPEN_ARRAY) depth++
        else if ((b === CLOSE_OBJECT || b === CLOSE_ARRAY) && --depth === 0) {
          this.#depth = 0
          return i
        }
      }
      inString = true
    }
  }

  /** A top-level value other than an entries array ended at `end`: validated, then dropped. */
  #valueDone(end: number): void {
    this.#jsonParse(this.#valueStart, end, '')
    if (this.#isEntriesKey && this.#entriesKeys === 1) this.#entriesNotArray = true
    this.#valueStart = -1
    this.#phase = 'after-value'
  }

  #scan(): void {
    const buf = this.#buf
    const n = buf.length
    let i = this.#pos
    while (i < n) {
      const phase = this.#phase
      if (phase === 'in-entry' || phase === 'in-key' || phase === 'in-value') {
        const end = this.#skipValue(i)
        if (end < 0) {
          i = n
          break
        }
        i = end
        if (phase === 'in-entry') {
          if (this.#batchStart < 0) this.#batchStart = this.#valueStart
          this.#batchEnd = end
          this.#valueStart = -1
          this.#phase = 'after-entry'
          if (this.#batchEnd - this.#batchStart >= BATCH_BYTES) this.#parseBatch()
        } else if (phase === 'in-key') {
          const key = this.#jsonParse(this.#valueStart, end, '') as string
          this.#isEntriesKey = key.toLowerCase() === 'entries'
          if (this.#isEntriesKey) this.#entriesKeys++
          this.#valueStart = -1
          this.#phase = 'colon'
        } else this.#valueDone(end)
        continue
      }
      if (phase === 'not-object') {
        i = n
        break
      }
      const b = buf[i]
      if (isSpace(b)) {
        i++
        continue
      }
      switch (phase) {
        case 'start':
          if (b === OPEN_OBJECT) {
            this.#phase = 'first-key'
            i++
          } else this.#phase = 'not-object'
          break
        case 'first-key':
        case 'key':
          if (b === CLOSE_OBJECT && phase === 'first-key') {
            this.#phase = 'done'
            i++
          } else if (b === QUOTE) {
            i = this.#beginValue(i)
            this.#phase = 'in-key'
          } else this.#fail(i, 'wanted a field name')
          break
        case 'colon':
          if (b !== COLON) this.#fail(i, "wanted ':'")
          this.#phase = 'value'
          i++
          break
        case 'value':
          if (this.#isEntriesKey && b === OPEN_ARRAY) {
            this.#phase = 'first-entry'
            i++
          } else {
            i = this.#beginValue(i)
            this.#phase = 'in-value'
          }
          break
        case 'after-value':
          if (b === COMMA) this.#phase = 'key'
          else if (b === CLOSE_OBJECT) this.#phase = 'done'
          else this.#fail(i, "wanted ',' or '}'")
          i++
          break
        case 'first-entry':
        case 'entry':
          if (b === CLOSE_ARRAY && phase === 'first-entry') {
            this.#phase = 'after-value'
            i++
          } else {
            const end = this.#entriesUpToCandidate(i)
            if (end > i) {
              i = end
              this.#phase = 'after-entry'
            } else {
              i = this.#beginValue(i)
              this.#phase = 'in-entry'
            }
          }
          break
        case 'after-entry':
          if (b === COMMA) this.#phase = 'entry'
          else if (b === CLOSE_ARRAY) {
            this.#parseBatch()
            this.#phase = 'after-value'
          } else this.#fail(i, "wanted ',' or ']'")
          i++
          break
        case 'done':
          this.#fail(i, 'unexpected data after the object')
      }
    }
    this.#pos = i
  }

  /**
   * The fast path, at `i`, the start of an entry: the entries up to the last `},{` within about
   * BATCH_BYTES are JSON.parsed as one array without scanning them, and the end of the last one is
   * returned; `i` when there is no such candidate or it is not a real boundary. Sound because a
   * parse is deterministic from a known state: if `[` + bytes[i, p] + `]` parses, then those bytes
   * are whole entries of the real array and p ends one (a `}` inside a string, or an unbalanced cut,
   * would fail the parse). When the parse fails, the byte scan takes over past p and reports
   * whatever is really wrong; kopia's compact JSON (`},{"id":…`) makes the fast path the rule.
   */
  #entriesUpToCandidate(i: number): number {
    if (i <= this.#noCandidateBefore) return i
    const buf = this.#buf
    const close = buf.lastIndexOf(ENTRY_SEPARATOR, Math.min(buf.length - ENTRY_SEPARATOR.length, i + BATCH_BYTES))
    if (close <= i) return i
    let entries: unknown
    try {
      entries = JSON.parse(`[${buf.toString('utf8', i, close + 1)}]`)
    } catch {
      this.#noCandidateBefore = close
      return i
    }
    this.#parseBatch() // the scanned entries before these, in order
    this.#addRecords(entries as unknown[])
    return close + 1
  }

  /** Parses the whole entries scanned so far as one array and reduces them to records. */
  #parseBatch(): void {
    if (this.#batchStart < 0) return
    const entries = this.#jsonParse(this.#batchStart, this.#batchEnd, '[', ']') as unknown[]
    this.#batchStart = -1
    this.#batchEnd = -1
    this.#addRecords(entries)
  }

  #addRecords(entries: readonly unknown[]): void {
    // Only the first entries array counts (a repeated one fails the content), and nothing after a malformed entry.
    if (this.#entriesKeys > 1 || this.#entryError !== undefined) {
      this.#records = []
      return
    }
    for (const entry of entries) {
      const record = recordOf(entry)
      if (record === null) {
        this.#entryError = `manifest entry #${this.#entries} has no id or no valid modified time`
        this.#records = []
        return
      }
      this.#records.push(record)
      this.#entries++
    }
  }
}

/** Decodes every entry of one whole content (see ManifestContentParser); a malformed entry fails the whole content, as in kopia. */
export function parseManifestContent(data: Buffer, ctx: BlobContext): ManifestRecord[] {
  const parser = new ManifestContentParser(ctx)
  parser.push(data)
  return parser.end()
}
