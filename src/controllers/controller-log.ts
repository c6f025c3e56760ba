// The logging surface the controllers need; a pino logger satisfies it structurally.
export interface ControllerLogger {
  debug(obj: object, msg: string): void
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export const silentLogger: ControllerLogger = { debug() {}, info() {}, warn() {}, error() {} }

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
