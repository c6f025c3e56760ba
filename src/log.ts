// The pino logger and the one list of paths that must never reach a log line.
import { pino, type Logger, type LevelWithSilent } from 'pino'

export const REDACT_PATHS = [
  'password', '*.password', 'passwordFile',
  'secretAccessKey', '*.secretAccessKey', 'accessKeyId', '*.accessKeyId', 'sessionToken', '*.sessionToken',
  'KOPIA_PASSWORD', '*.KOPIA_PASSWORD', 'RESTIC_PASSWORD', '*.RESTIC_PASSWORD',
  'AWS_SECRET_ACCESS_KEY', '*.AWS_SECRET_ACCESS_KEY',
  // Secret objects seen at admission: their values never leave the request.
  'data', '*.data', 'stringData', '*.stringData', 'object.data', 'object.stringData',
  'req.headers.authorization', 'req.headers.cookie', 'key', 'tls.key', '*.privateKey',
]

export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream): Logger {
  const options = { level, base: { name: 'volsync-autorestore' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }
  return destination ? pino(options, destination) : pino(options)
}

export type { Logger }
