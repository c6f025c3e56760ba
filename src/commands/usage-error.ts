// Exit codes of design section 3, and the error type that maps to exit 2.
export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

/** Bad arguments or invalid config: the message names the offending argument or key. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}
