// "Can this password open that repository?" Two forms: a synchronous one that only reads the
// derived-key cache and never starts work (nothing on a request path may start a 64 MiB scrypt),
// and an asynchronous one that derives the key off-thread when needed. Who may start derivations,
// and how many at once, is the caller's business (catalog/password-verdicts.ts bounds them).
import { type FormatBlob, openFormatBox } from './format-blob.ts'
import { cachedFormatKey, deriveFormatKey, SUPPORTED_KEY_ALGORITHMS } from './key-derivation.ts'

export type PasswordVerdict = 'opens' | 'wrong' | 'unknown'

/**
 * Verdict from keys derived before (one small GCM decryption); 'unknown' when this password's key
 * was never derived or the key algorithm is unsupported. Never starts a derivation.
 */
export function passwordVerdict(blob: FormatBlob, password: string): PasswordVerdict {
  if (!SUPPORTED_KEY_ALGORITHMS.includes(blob.keyAlgorithm)) return 'unknown'
  const key = cachedFormatKey(blob.uniqueId, blob.keyAlgorithm, password)
  if (key === undefined) return 'unknown'
  return openFormatBox(blob, key) === null ? 'wrong' : 'opens'
}

/**
 * Derives the key (off-thread, shared with concurrent callers, cached) and opens the box;
 * 'unknown' only for an unsupported key algorithm. Rejects when the derivation fails (e.g. a salt
 * too short) or `signal` aborts the wait (the derivation itself runs on and stays cached).
 */
export async function checkPassword(blob: FormatBlob, password: string, signal?: AbortSignal): Promise<PasswordVerdict> {
  if (!SUPPORTED_KEY_ALGORITHMS.includes(blob.keyAlgorithm)) return 'unknown'
  const key = await deriveFormatKey(blob.uniqueId, blob.keyAlgorithm, password, signal)
  return openFormatBox(blob, key) === null ? 'wrong' : 'opens'
}
