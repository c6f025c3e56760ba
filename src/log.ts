// The pino logger and the one list of paths that must never reach a log line.
import { pino, stdSerializers, symbols, type Logger, type LevelWithSilent } from 'pino'
import { redactUrlsIn } from './redact-url.ts'

/** What replaces a redacted value in a log line. */
const CENSOR = '[redacted]'

// Paths pino's redactor censors. Each starts with a literal top-level key, so pino runs a path's
// redactor only on a line that carries that key. (A `*.name` path instead makes pino run a redactor
// over every field of every line and re-walk its paths each call: 20.8 us per decision line
// against 2 us - issue 14. Those names are NESTED_SECRET_KEYS, censored by redactLine below.)
const EXPLICIT_PATHS = [
  'password', 'passwordFile',
  'secretAccessKey', 'accessKeyId', 'sessionToken',
  'KOPIA_PASSWORD', 'RESTIC_PASSWORD', 'AWS_SECRET_ACCESS_KEY',
  // Secret objects seen at admission: their values never leave the request.
  'data', 'stringData', 'object.data', 'object.stringData',
  'req.headers.authorization', 'req.headers.cookie',
  // Private keys, by the names they have where they exist (never a bare `key`: `{ key: 'server' }`
  // names a config key and must reach the log): a TlsPair logged as `pair`, the server's `tls`
  // options, the self-managed TlsMaterial, a PemPair, a Node KeyObject holder.
  'tls.key', 'pair.key', 'material.key', 'material.caKey', 'caKey', 'keyPem', 'privateKey',
]

// Secret field names censored one level down, under any top-level key (`{ source: { password } }`,
// `{ secret: { data } }`, `{ ca: { keyPem } }`) and in a logged error's own fields.
const NESTED_SECRET_KEYS = [
  'password', 'secretAccessKey', 'accessKeyId', 'sessionToken', 'KOPIA_PASSWORD', 'RESTIC_PASSWORD',
  'AWS_SECRET_ACCESS_KEY', 'data', 'stringData', 'keyPem', 'privateKey',
] as const

/**
 * Every path that never reaches a log line, in pino's path syntax: the explicit paths pino censors,
 * and `*.name` for each NESTED_SECRET_KEYS name (censored by the logger's own formatter, not pino).
 */
export const REDACT_PATHS: readonly string[] = [...EXPLICIT_PATHS, ...NESTED_SECRET_KEYS.map((name) => `*.${name}`)]

// `value` with its own NESTED_SECRET_KEYS fields censored (a shallow copy when one is present).
function censorNested(value: object): object {
  if (Array.isArray(value)) return value
  let copy: Record<string, unknown> | undefined
  for (const name of NESTED_SECRET_KEYS) {
    if (Object.hasOwn(value, name)) (copy ??= { ...value })[name] = CENSOR
  }
  return copy ?? value
}

// An error message or a logged field may embed a URL with credentials (an S3 endpoint with
// user:password@, a presigned request): every URL is printed through redactUrlsIn.
function serializeError(error: unknown): unknown {
  if (!(error instanceof Error)) {
    if (typeof error === 'string') return redactUrlsIn(error)
    return typeof error === 'object' && error !== null ? censorNested(error) : error
  }
  const serialized = stdSerializers.err(error)
  if (typeof serialized.message === 'string') serialized.message = redactUrlsIn(serialized.message)
  if (typeof serialized.stack === 'string') serialized.stack = redactUrlsIn(serialized.stack)
  return censorNested(serialized)
}

// A child's serialized bindings that may hold a NESTED_SECRET_KEYS field: pino serializes bindings
// once, at child(), without formatters.log (its own formatters.bindings is not applied to children).
const NESTED_SECRET_IN_JSON = new RegExp(`"(?:${NESTED_SECRET_KEYS.join('|')})":`)

// onChild: a child whose bindings carry a nested secret has them serialized again, censored. The
// common child ({ reqId } per request, { loop }) costs one regular-expression test.
function censorChildBindings(child: Logger): void {
  const holder = child as unknown as Record<symbol, string>
  if (!NESTED_SECRET_IN_JSON.test(holder[symbols.chindingsSym] ?? '')) return
  const bindings = child.bindings()
  const censored: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(bindings)) censored[key] = typeof value === 'object' && value !== null ? censorNested(value) : value
  holder[symbols.chindingsSym] = ''
  child.setBindings(censored)
}

// One pass over a line's top-level fields: URLs in strings redacted,
// NESTED_SECRET_KEYS censored inside objects (`err` is left to serializeError, which needs the
// Error itself). The line is copied only when something changes; a decision line never is.
function redactLine(object: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined
  for (const key in object) {
    if (!Object.hasOwn(object, key)) continue
    const value = object[key]
    if (typeof value === 'string') {
      if (!value.includes('://')) continue
      const redacted = redactUrlsIn(value)
      if (redacted !== value) (copy ??= { ...object })[key] = redacted
    } else if (typeof value === 'object' && value !== null && key !== 'err') {
      const censored = censorNested(value)
      if (censored !== value) (copy ??= { ...object })[key] = censored
    }
  }
  return copy ?? object
}

/**
 * How the server's log lines reach stdout. Each write is a thread-pool round trip (~55 us of CPU on
 * this project's 2-core test machines, most of it waking a pool thread and the loop again), so lines
 * are gathered until BATCH_BYTES or FLUSH_MS, whichever comes first, and written asynchronously: a
 * stalled log reader never blocks the event loop while the server runs. At ~4,000 decision lines a
 * second, 16 KiB batches cost 4 us of CPU less per line than 4 KiB ones (issue 14). Pino flushes what
 * is gathered synchronously when the process exits (waiting for a stalled reader then). A SIGKILL
 * loses what is gathered: FLUSH_MS of lines with a reader that keeps up, more behind a stalled one.
 * Beyond MAX_BUFFERED_BYTES new lines are dropped rather than held (memory stays bounded), and the
 * drops are counted on stderr. MAX_WRITE_BYTES bounds one write (sonic-boom needs it above BATCH_BYTES).
 */
export const STDOUT_LOG_WRITES = Object.freeze({ BATCH_BYTES: 16 * 1024, MAX_WRITE_BYTES: 64 * 1024, FLUSH_MS: 100, MAX_BUFFERED_BYTES: 16 * 1024 * 1024 })

/**
 * The process's pino logger at `level`, writing JSON lines to `destination` (default: stdout, in batches
 * per STDOUT_LOG_WRITES), with every
 * REDACT_PATHS field replaced by "[redacted]" (in logged objects, child bindings and `err`'s own fields)
 * and URLs in `err` (message, stack) and in top-level string fields redacted (src/redact-url.ts:
 * userinfo, credential query parameters).
 */
export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream): Logger {
  const options = {
    level, base: { name: 'volsync-autorestore' }, redact: { paths: EXPLICIT_PATHS, censor: CENSOR },
    serializers: { err: serializeError },
    formatters: { log: redactLine },
    onChild: censorChildBindings,
  }
  if (destination) return pino(options, destination)
  const stdout = pino.destination({
    dest: 1, sync: false,
    minLength: STDOUT_LOG_WRITES.BATCH_BYTES, maxWrite: STDOUT_LOG_WRITES.MAX_WRITE_BYTES, periodicFlush: STDOUT_LOG_WRITES.FLUSH_MS, maxLength: STDOUT_LOG_WRITES.MAX_BUFFERED_BYTES,
  })
  stdout.on('drop', reportDrops())
  return pino(options, stdout)
}

// Lines dropped because stdout's reader stalled are said on stderr (stdout is what is stalled), at
// most once every DROP_REPORT_MS with the count since the last report.
const DROP_REPORT_MS = 1000
function reportDrops(): () => void {
  let dropped = 0
  let timer: NodeJS.Timeout | undefined
  return () => {
    dropped++
    timer ??= setTimeout(() => {
      process.stderr.write(`${JSON.stringify({ level: 40, time: Date.now(), name: 'volsync-autorestore', dropped, msg: `stdout's reader is stalled: ${dropped} log line(s) dropped (over ${STDOUT_LOG_WRITES.MAX_BUFFERED_BYTES} bytes waiting)` })}\n`)
      dropped = 0
      timer = undefined
    }, DROP_REPORT_MS).unref()
  }
}

export type { Logger }

/**
 * The one logging surface every module takes (a pino Logger satisfies it). Errors go as
 * `{ err }` with the Error object itself, so pino's serializer keeps its type, message and stack.
 */
export interface Log {
  debug(obj: object, msg: string): void
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
  child(bindings: Record<string, unknown>): Log
}

/** A Log that drops everything (tests, and modules used without a logger). */
export const silentLog: Log = { debug() {}, info() {}, warn() {}, error() {}, child: () => silentLog }
