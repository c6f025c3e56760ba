// S3's answer to ListObjectsV2 (a ListBucketResult XML document), read into just what a listing
// needs. The SDK's own deserializer builds a generic tree of every element, walks the operation's
// schema and parses every date with a regular expression: about twice the CPU of the request itself
// (issue 14). This reads the few elements a listing uses, jumping between tags with indexOf, and
// gives up (undefined) on anything it does not expect, so the caller can hand the answer to the SDK.
//
// Text is decoded as XML 1.0 says and as the SDK's parser does: the five named entities, decimal and
// hexadecimal character references, CDATA sections, comments skipped, line ends normalized to "\n".
// A DOCTYPE is refused: S3 never sends one, and entity declarations are no business of a listing.
import { parseRfc3339 } from '../rfc3339.ts'

/** One object of a ListObjectsV2 page. */
export interface ListedObject {
  /** The full key, as stored (XML entities decoded). */
  readonly key: string
  /** Bytes; 0 when the answer carries no Size, as the SDK path reads it. */
  readonly size: number
  /** LastModified, ms since epoch; 0 when the answer carries none, as the SDK path reads it. */
  readonly modifiedMs: number
}

/** What a listing needs from one ListObjectsV2 answer. */
export interface ListObjectsV2Page {
  /** Contents with a Key, in the answer's order. */
  readonly objects: ListedObject[]
  /** CommonPrefixes' Prefix values, in the answer's order (only with a delimiter). */
  readonly prefixes: string[]
  readonly truncated: boolean
  readonly nextContinuationToken: string | undefined
}

/** Thrown inside the reader when the document is not a ListBucketResult it understands. */
class Unexpected extends Error {}

const ROOT = 'ListBucketResult'
const [TAB, LF, CR, SPACE, BANG, DOUBLE_QUOTE, SINGLE_QUOTE, SLASH, LT, GT, QUESTION] = [9, 10, 13, 32, 33, 34, 39, 47, 60, 62, 63] as const
const NAMED_ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

/** A position in the document; every method moves it forward or throws Unexpected. */
class Reader {
  readonly xml: string
  at = 0
  /** Whether the start tag `child` last read was empty (`<name/>`). */
  empty = false

  constructor(xml: string) {
    this.xml = xml
  }

  /** Skips whitespace, `<?...?>` and comments before the root element; refuses a DOCTYPE. */
  prolog(): void {
    const xml = this.xml
    for (;;) {
      this.at = this.#nextTag(this.at)
      if (xml.startsWith('<?', this.at)) this.at = this.#after('?>', this.at + 2)
      else if (xml.startsWith('<!--', this.at)) this.at = this.#after('-->', this.at + 4)
      else if (xml.startsWith('<!', this.at)) throw new Unexpected('a DOCTYPE or declaration')
      else return
    }
  }

  /**
   * Reads the next child's start tag (attributes skipped) and returns its name (`empty` says whether
   * it was `<name/>`), or undefined at the parent's end tag (left unread). Skips comments and
   * processing instructions; text between elements that is not whitespace is unexpected (a
   * listing's containers hold elements only).
   */
  child(): string | undefined {
    const xml = this.xml
    for (;;) {
      const lt = this.#nextTag(this.at)
      this.at = lt
      const next = xml.charCodeAt(lt + 1)
      if (next === SLASH) return undefined
      if (next === BANG) {
        if (!xml.startsWith('<!--', lt)) throw new Unexpected('a declaration inside the document')
        this.at = this.#after('-->', lt + 4)
      } else if (next === QUESTION) {
        this.at = this.#after('?>', lt + 2)
      } else {
        return this.#startTag()
      }
    }
  }

  /** Reads the end tag of `name` (whitespace allowed before its `>`). */
  end(name: string): void {
    const xml = this.xml
    const at = this.at
    const after = at + 2 + name.length
    if (xml.charCodeAt(at) !== LT || xml.charCodeAt(at + 1) !== SLASH) throw new Unexpected(`no </${name}>`)
    // charCodeAt, not startsWith(name, position): the hottest line of a read, and measurably slower.
    for (let i = 0; i < name.length; i++) if (xml.charCodeAt(at + 2 + i) !== name.charCodeAt(i)) throw new Unexpected(`no </${name}>`)
    if (xml.charCodeAt(after) === GT) {
      this.at = after + 1
      return
    }
    const close = xml.indexOf('>', after)
    if (close === -1 || xml.slice(after, close).trim() !== '') throw new Unexpected(`no </${name}>`)
    this.at = close + 1
  }

  /** The decoded text of a leaf element whose start tag was just read, through its end tag. */
  text(name: string): string {
    if (this.empty) return ''
    const xml = this.xml
    let out = ''
    for (;;) {
      const lt = xml.indexOf('<', this.at)
      if (lt === -1) throw new Unexpected(`no </${name}>`)
      if (lt > this.at) out += decodeText(xml.slice(this.at, lt))
      this.at = lt
      const next = xml.charCodeAt(lt + 1)
      if (next === SLASH) {
        this.end(name)
        return out
      }
      if (xml.startsWith('<![CDATA[', lt)) {
        const close = xml.indexOf(']]>', lt + 9)
        if (close === -1) throw new Unexpected('an unclosed CDATA section')
        out += xml.slice(lt + 9, close)
        this.at = close + 3
      } else if (xml.startsWith('<!--', lt)) {
        this.at = this.#after('-->', lt + 4)
      } else {
        throw new Unexpected(`an element inside <${name}>`)
      }
    }
  }

  /** Skips the rest of an element whose start tag was just read, children and all. */
  skip(name: string): void {
    if (this.empty) return
    const xml = this.xml
    for (;;) {
      const lt = xml.indexOf('<', this.at)
      if (lt === -1) throw new Unexpected(`no </${name}>`)
      this.at = lt
      const next = xml.charCodeAt(lt + 1)
      if (next === SLASH) {
        this.end(name)
        return
      }
      if (xml.startsWith('<![CDATA[', lt)) this.at = this.#after(']]>', lt + 9)
      else if (xml.startsWith('<!--', lt)) this.at = this.#after('-->', lt + 4)
      else if (next === QUESTION) this.at = this.#after('?>', lt + 2)
      else if (next === BANG) throw new Unexpected('a declaration inside the document')
      else this.skip(this.#startTag())
    }
  }

  /** The next `<` at or after `from`; the text before it must be whitespace. */
  #nextTag(from: number): number {
    const xml = this.xml
    const lt = xml.indexOf('<', from)
    if (lt === -1) throw new Unexpected('the document ends early')
    for (let i = from; i < lt; i++) {
      const c = xml.charCodeAt(i)
      if (c !== SPACE && c !== TAB && c !== LF && c !== CR) throw new Unexpected('text between elements')
    }
    return lt
  }

  /** The index just past the next `marker` at or after `from`. */
  #after(marker: string, from: number): number {
    const found = this.xml.indexOf(marker, from)
    if (found === -1) throw new Unexpected(`no ${marker}`)
    return found + marker.length
  }

  /** At `<name ...>` or `<name .../>`: the name; sets `empty` and moves past `>`. */
  #startTag(): string {
    const xml = this.xml
    const start = this.at + 1
    let i = start
    for (;;) {
      const c = xml.charCodeAt(i)
      if (c === GT || c === SLASH || c === SPACE || c === TAB || c === LF || c === CR || Number.isNaN(c)) break
      i++
    }
    if (i === start) throw new Unexpected('an element without a name')
    const name = xml.slice(start, i)
    if (xml.charCodeAt(i) === GT) {
      this.empty = false
      this.at = i + 1
      return name
    }
    // Attributes (the root's xmlns): a quoted value may hold '>' or '/'.
    let quote = 0
    for (; i < xml.length; i++) {
      const c = xml.charCodeAt(i)
      if (quote !== 0) {
        if (c === quote) quote = 0
      } else if (c === DOUBLE_QUOTE || c === SINGLE_QUOTE) {
        quote = c
      } else if (c === GT) {
        this.empty = xml.charCodeAt(i - 1) === SLASH
        this.at = i + 1
        return name
      }
    }
    throw new Unexpected(`an unclosed <${name}>`)
  }
}

/** XML text with its entity and character references decoded; throws Unexpected on an unknown one. */
function decodeText(raw: string): string {
  let amp = raw.indexOf('&')
  if (amp === -1) return raw
  let out = ''
  let from = 0
  while (amp !== -1) {
    const semi = raw.indexOf(';', amp + 1)
    if (semi === -1) throw new Unexpected('an unterminated reference')
    out += raw.slice(from, amp) + reference(raw.slice(amp + 1, semi))
    from = semi + 1
    amp = raw.indexOf('&', from)
  }
  return out + raw.slice(from)
}

/** The character a reference (`amp`, `#38`, `#x26`) stands for. */
function reference(body: string): string {
  const named = NAMED_ENTITIES[body]
  if (named !== undefined) return named
  const code = body.startsWith('#x') ? parseHex(body.slice(2)) : body.startsWith('#') ? parseDecimal(body.slice(1)) : Number.NaN
  if (!Number.isInteger(code) || code < 1 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) throw new Unexpected(`the reference &${body};`)
  return String.fromCodePoint(code)
}

function parseHex(digits: string): number {
  return /^[0-9a-fA-F]{1,6}$/.test(digits) ? Number.parseInt(digits, 16) : Number.NaN
}

function parseDecimal(digits: string): number {
  return /^[0-9]{1,7}$/.test(digits) ? Number.parseInt(digits, 10) : Number.NaN
}

/** A Size value: a non-negative integer. */
function size(text: string): number {
  const value = Number(text)
  if (text.trim() === '' || !Number.isSafeInteger(value) || value < 0) throw new Unexpected(`the size ${JSON.stringify(text)}`)
  return value
}

/**
 * A LastModified value, RFC 3339 with a zone as S3 writes it, as ms since epoch. Any other form is not
 * guessed at (Date.parse would read a time without a zone as local time): the SDK gets the answer.
 */
function modified(text: string): number {
  const instant = parseRfc3339(text.trim())
  if (instant === null) throw new Unexpected(`the date ${JSON.stringify(text)}`)
  return instant.seconds * 1000 + Math.floor(instant.nanos / 1e6)
}

/** IsTruncated: exactly `true` or `false` (around whitespace); anything else is not guessed at. */
function truncation(text: string): boolean {
  const value = text.trim()
  if (value !== 'true' && value !== 'false') throw new Unexpected(`IsTruncated ${JSON.stringify(text)}`)
  return value === 'true'
}

/** Elements that may appear once in their parent, as bits of a `seen` mask. */
const ONCE: Readonly<Record<string, number>> = { Key: 1, Size: 2, LastModified: 4, Prefix: 8, IsTruncated: 16, NextContinuationToken: 32 }

/** `seen` with `element`'s bit set; throws when it was set already (the SDK refuses such an answer, so do we). */
function once(seen: number, element: string): number {
  const bit = ONCE[element] ?? 0
  if ((seen & bit) !== 0) throw new Unexpected(`a repeated ${element}`)
  return seen | bit
}

function readContents(reader: Reader, objects: ListedObject[]): void {
  let key: string | undefined
  let bytes = 0
  let modifiedMs = 0
  let seen = 0
  for (let child = reader.child(); child !== undefined; child = reader.child()) {
    switch (child) {
      case 'Key': seen = once(seen, child); key = reader.text('Key'); break
      case 'Size': seen = once(seen, child); bytes = size(reader.text('Size')); break
      case 'LastModified': seen = once(seen, child); modifiedMs = modified(reader.text('LastModified')); break
      default: reader.skip(child)
    }
  }
  reader.end('Contents')
  if (key !== undefined) objects.push({ key, size: bytes, modifiedMs })
}

function readCommonPrefixes(reader: Reader, prefixes: string[]): void {
  let seen = 0
  for (let child = reader.child(); child !== undefined; child = reader.child()) {
    if (child === 'Prefix') {
      seen = once(seen, child)
      prefixes.push(reader.text('Prefix'))
    } else reader.skip(child)
  }
  reader.end('CommonPrefixes')
}

/**
 * Reads a ListObjectsV2 answer body (UTF-8 text): Contents' Key, Size and LastModified,
 * CommonPrefixes' Prefix, IsTruncated and NextContinuationToken; every other element is skipped.
 * Returns undefined for anything else: another root element (an S3 `<Error>` sent with a 200),
 * malformed or truncated XML, an unknown entity, a Size, LastModified or IsTruncated that is not one, a
 * Key, Size, LastModified, Prefix, IsTruncated or NextContinuationToken given twice. Pure; never
 * throws.
 */
export function parseListObjectsV2(body: string): ListObjectsV2Page | undefined {
  const reader = new Reader(body.includes('\r') ? body.replace(/\r\n?/g, '\n') : body)
  const objects: ListedObject[] = []
  const prefixes: string[] = []
  let truncated = false
  let nextContinuationToken: string | undefined
  let seen = 0
  try {
    reader.prolog()
    if (reader.child() !== ROOT) return undefined
    if (!reader.empty) {
      for (let child = reader.child(); child !== undefined; child = reader.child()) {
        switch (child) {
          case 'Contents': if (!reader.empty) readContents(reader, objects); break
          case 'CommonPrefixes': if (!reader.empty) readCommonPrefixes(reader, prefixes); break
          case 'IsTruncated': seen = once(seen, child); truncated = truncation(reader.text('IsTruncated')); break
          case 'NextContinuationToken': seen = once(seen, child); nextContinuationToken = reader.text('NextContinuationToken'); break
          default: reader.skip(child)
        }
      }
      reader.end(ROOT)
    }
  } catch {
    // Unexpected, or a RangeError from absurdly deep nesting: either way not a listing to trust.
    return undefined
  }
  return { objects, prefixes, truncated, nextContinuationToken }
}
