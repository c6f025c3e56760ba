// Secrets come from files (keys of a mounted Secret) and are read when used, so a rotated Secret
// takes effect without a restart. The content never reaches a log or an error message.
import { readFile } from 'node:fs/promises'

/** A password file that cannot be read or is empty; the message names the config key and the file, never content. */
export class SecretFileError extends Error {
  override readonly name = 'SecretFileError'
}

/**
 * The file's exact content: a repository password is whatever bytes the Secret holds, the same
 * value the movers get as an environment variable, trailing newline included. `key` names the
 * config key for the error message.
 */
export async function readSecretFile(file: string, key: string): Promise<string> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    throw new SecretFileError(`cannot read ${key} ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  if (text === '') throw new SecretFileError(`${key} ${file} is empty`)
  return text
}
