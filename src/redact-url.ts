// The one place URLs are made safe to print. An S3 endpoint, a presigned request or a repository
// location can carry credentials: `user:password@` in the authority, or a query signature
// (X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token, ...). Logs, /status, `catalog` and
// `review` print URLs only through these functions.

/** What replaces a credential in a printed URL. */
export const REDACTED = 'redacted'

// Query parameters that carry or derive from a credential (AWS SigV2/SigV4 presigned URLs, and the
// generic names some S3-compatible servers and proxies use). Compared case-insensitively.
const SECRET_QUERY_KEYS = new Set([
  'x-amz-signature', 'x-amz-credential', 'x-amz-security-token', 'signature', 'awsaccesskeyid',
  'access_key', 'secret_key', 'secret', 'token', 'password', 'sig',
])

// scheme://[userinfo@]rest-up-to-whitespace-or-quote. The scheme is any URL scheme (http, https,
// s3, kopia's and restic's own), since any of them may carry userinfo.
const URL_IN_TEXT = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s"'<>`]*)/gi

/**
 * `url` with its userinfo (`user:password@`) replaced by `redacted@` and the values of credential query
 * parameters (X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token, Signature, AWSAccessKeyId, ...)
 * by `redacted`. Works on text that does not parse as a URL (it never throws) and leaves everything
 * else byte for byte, so a redacted URL still says where it points. Pure.
 */
export function redactUrl(url: string): string {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)(.*)$/is.exec(url)
  if (!match) return redactQuery(url)
  return match[1]! + redactAfterScheme(match[2]!)
}

/**
 * `text` (an error message, a log line, a status field) with every `scheme://...` URL in it passed
 * through redactUrl. Pure; never throws; text without "://" is returned as is.
 */
export function redactUrlsIn(text: string): string {
  if (!text.includes('://')) return text
  return text.replace(URL_IN_TEXT, (_whole, scheme: string, rest: string) => {
    // Punctuation that ends the sentence around a URL ("at http://host/: AccessDenied") stays text.
    const trailing = /[:.,;!?)\]]*$/.exec(rest)?.[0] ?? ''
    return scheme + redactAfterScheme(rest.slice(0, rest.length - trailing.length)) + trailing
  })
}

/**
 * A copy of `value` with redactUrlsIn applied to every string inside it (objects and arrays walked,
 * other values kept). For documents printed as a whole: the /status JSON, `catalog --json`. Pure.
 */
export function redactUrlsDeep<T>(value: T): T {
  return walk(value) as T
}

function walk(value: unknown): unknown {
  if (typeof value === 'string') return redactUrlsIn(value)
  if (Array.isArray(value)) return value.map(walk)
  if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {}
    for (const [key, inner] of Object.entries(value)) out[key] = walk(inner)
    return out
  }
  return value
}

// `rest` is everything after "scheme://": authority, then path/query/fragment.
function redactAfterScheme(rest: string): string {
  const end = rest.search(/[/?#]/)
  const authority = end === -1 ? rest : rest.slice(0, end)
  const tail = end === -1 ? '' : rest.slice(end)
  // The last '@' ends the userinfo (a password may itself contain an unescaped '@').
  const at = authority.lastIndexOf('@')
  const host = at === -1 ? authority : `${REDACTED}@${authority.slice(at + 1)}`
  return host + redactQuery(tail)
}

function redactQuery(tail: string): string {
  const q = tail.indexOf('?')
  if (q === -1) return tail
  const hash = tail.indexOf('#', q)
  const query = hash === -1 ? tail.slice(q + 1) : tail.slice(q + 1, hash)
  const redacted = query.split('&').map((pair) => {
    const eq = pair.indexOf('=')
    if (eq === -1) return pair
    const key = safeDecode(pair.slice(0, eq)).toLowerCase()
    return SECRET_QUERY_KEYS.has(key) ? `${pair.slice(0, eq)}=${REDACTED}` : pair
  }).join('&')
  return tail.slice(0, q + 1) + redacted + (hash === -1 ? '' : tail.slice(hash))
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}
