// "Can this password open that repository?" for admission checks on a request path: answered from
// the derived-key cache and one small GCM decryption, never from the network and never by running
// scrypt on the event loop. An unknown password starts a derivation in the background; the answer
// is 'unknown' until it finishes.
import { type FormatBlob, openFormatBox } from './format-blob.ts'
import { cachedFormatKey, deriveFormatKey, SUPPORTED_KEY_ALGORITHMS } from './key-derivation.ts'

export type PasswordVerdict = 'opens' | 'wrong' | 'unknown'

/**
 * Synchronous verdict from cached derivations. With `derive` (the default) a password not seen
 * before starts its derivation off-thread so that a later call can answer.
 */
export function passwordVerdict(blob: FormatBlob, password: string, options: { readonly derive?: boolean } = {}): PasswordVerdict {
  if (!SUPPORTED_KEY_ALGORITHMS.includes(blob.keyAlgorithm)) return 'unknown'
  const key = cachedFormatKey(blob.uniqueId, blob.keyAlgorithm, password)
  if (key !== undefined) return openFormatBox(blob, key) === null ? 'wrong' : 'opens'
  if (options.derive ?? true) deriveFormatKey(blob.uniqueId, blob.keyAlgorithm, password).catch(() => undefined)
  return 'unknown'
}

/** Waits for the derivation (off-thread) when needed; 'unknown' only for an unsupported key algorithm. */
export async function checkPassword(blob: FormatBlob, password: string, signal?: AbortSignal): Promise<PasswordVerdict> {
  if (!SUPPORTED_KEY_ALGORITHMS.includes(blob.keyAlgorithm)) return 'unknown'
  const key = await deriveFormatKey(blob.uniqueId, blob.keyAlgorithm, password, signal)
  return openFormatBox(blob, key) === null ? 'wrong' : 'opens'
}
