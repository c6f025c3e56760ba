// The one way to turn a thrown value into text, for messages that wrap it (a KopiaError's reason,
// a CLI's stderr line, a status field), and into an Error. Log lines take the Error itself as
// `{ err }`, so pino's serializer keeps its type and stack. Pure: admission/ may import it.

/** A thrown value's message: `error.message` for an Error, `String(error)` for anything else. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** A thrown value as an Error, for `{ err }` and `cause`: the Error itself, or one wrapping String(value). */
export function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}
