// A guard in front of JSON.parse for request bodies: nesting that no Kubernetes object has is refused by
// one linear scan, so a cheap hostile body (a few MB of `[[[[...`) cannot hold the event loop in the
// parser while reviews and probes wait behind it.
import { BACKSLASH, CLOSE_ARRAY, CLOSE_OBJECT, OPEN_ARRAY, OPEN_OBJECT, QUOTE } from '../json-syntax.ts'

/**
 * How deep an AdmissionReview may nest. A real one is a few dozen levels deep (review -> request ->
 * object -> spec -> template -> spec -> containers[] -> ..., managedFields mirroring it with a few more);
 * 100 leaves room for any CRD an admission rule may be sent while refusing the 10^6-deep bodies
 * that cost the parser seconds.
 */
export const MAX_JSON_DEPTH = 100


/**
 * Pure: the reason `text` nests objects/arrays deeper than `maxDepth` (one line, naming the limit and
 * the offset where it was exceeded), or undefined when it does not. One pass over the UTF-16 code
 * units, stopping at the first level past the limit; brackets inside strings (escapes included) are
 * not counted. Does not validate JSON: a body that passes still goes to JSON.parse.
 */
export function jsonDepthProblem(text: string, maxDepth: number = MAX_JSON_DEPTH): string | undefined {
  // Nesting never exceeds the number of opening brackets: most reviews (a PVC's) have fewer than the
  // limit, counted by the native indexOf far faster than the scan below walks the text.
  if (openingBracketsAtMost(text, maxDepth)) return undefined
  let depth = 0
  let inString = false
  const length = text.length
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i)
    if (inString) {
      if (code === BACKSLASH) i++
      else if (code === QUOTE) inString = false
    } else if (code === QUOTE) {
      inString = true
    } else if (code === OPEN_OBJECT || code === OPEN_ARRAY) {
      if (++depth > maxDepth) return `body nests deeper than ${maxDepth} levels (at offset ${i}): no AdmissionReview does`
    } else if (code === CLOSE_OBJECT || code === CLOSE_ARRAY) {
      depth--
    }
  }
  return undefined
}

// Whether `text` holds at most `limit` `{` and `[` together (strings included).
function openingBracketsAtMost(text: string, limit: number): boolean {
  let count = 0
  for (const bracket of ['{', '[']) {
    for (let i = text.indexOf(bracket); i !== -1; i = text.indexOf(bracket, i + 1)) {
      if (++count > limit) return false
    }
  }
  return true
}
