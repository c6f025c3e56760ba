// The pino logger and the one list of paths that must never reach a log line.
import { pino, stdSerializers, type Logger, type LevelWithSilent } from 'pino'
import { redactUrlsIn } from './redact-url.ts'

export const REDACT_PATHS = [
  'password', '*.password', 'passwordFile',
  'secretAccessKey', '*.secretAccessKey', 'accessKeyId', '*.accessKeyId', 'sessionToken', '*.sessionToken',
  'KOPIA_PASSWORD', '*.KOPIA_PASSWORD', 'RESTIC_PASSWORD', '*.RESTIC_PASSWORD',
  'AWS_SECRET_ACCESS_KEY', '*.AWS_SECRET_ACCESS_KEY',
  // Secret objects seen at admission: their values never leave the request.
  'data', '*.data', 'stringData', '*.stringData', 'object.data', 'object.stringData',
  'req.headers.authorization', 'req.headers.cookie',
  // Private keys, by the names they have where they exist (never a bare `key`: `{ key: 'server' }`
  // names a config key and must reach the log): a TlsPair logged as `pair`, the server's `tls`
  // options, the self-managed TlsMaterial, a PemPair, a Node KeyObject holder.
  'tls.key', 'pair.key', 'material.key', 'material.caKey', 'caKey', 'keyPem', '*.keyPem', 'privateKey', '*.privateKey',
]

// An error message or a logged field may embed a URL with credentials (an S3 endpoint with
// user:password@, a presigned request): every URL is printed through redactUrlsIn.
function serializeError(error: unknown): unknown {
  if (!(error instanceof Error)) return typeof error === 'string' ? redactUrlsIn(error) : error
  const serialized = stdSerializers.err(error)
  if (typeof serialized.message === 'string') serialized.message = redactUrlsIn(serialized.message)
  if (typeof serialized.stack === 'string') serialized.stack = redactUrlsIn(serialized.stack)
  return serialized
}

function redactTopLevelUrls(object: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined
  for (const [key, value] of Object.entries(object)) {
    if (typeof value !== 'string') continue
    const redacted = redactUrlsIn(value)
    if (redacted !== value) (copy ??= { ...object })[key] = redacted
  }
  return copy ?? object
}

/**
 * The process's pino logger at `level`, writing JSON lines to `destination` (default stdout), with every
 * REDACT_PATHS field replaced by "[redacted]" and URLs in `err` (message, stack) and in top-level string
 * fields redacted (src/redact-url.ts: userinfo, credential query parameters).
 */
export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream): Logger {
  const options = {
    level, base: { name: 'volsync-autorestore' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: { err: serializeError },
    formatters: { log: redactTopLevelUrls },
  }
  return destination ? pino(options, destination) : pino(options)
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
