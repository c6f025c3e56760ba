// The repository's `config` file: {version, id, chunker_polynomial}, encrypted with the master
// key like any unpacked file (restic never compresses it, but the v2 encoding byte is accepted).
// restic aborts on a version it does not know, and so does this reader.

export interface ResticConfig {
  readonly version: 1 | 2
  /** 32 random bytes in hex, unique per repository. */
  readonly id: string
}

export type ConfigResult =
  | { readonly ok: true; readonly config: ResticConfig }
  | { readonly ok: false; readonly code: 'unsupported' | 'invalid'; readonly problem: string }

/**
 * The decrypted `config` file's version (1 or 2) and ID, or why it is not usable: `unsupported` for
 * another version (restic would refuse it too), `invalid` for anything else. Never throws; the caller
 * turns a failure into a ResticError naming the file.
 */
export function decodeConfig(json: unknown): ConfigResult {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { ok: false, code: 'invalid', problem: 'not a JSON object' }
  const { version, id } = json as Record<string, unknown>
  if (version !== 1 && version !== 2) return { ok: false, code: 'unsupported', problem: `unsupported restic repository version ${JSON.stringify(version)}` }
  if (typeof id !== 'string' || id === '') return { ok: false, code: 'invalid', problem: 'no repository "id"' }
  return { ok: true, config: { version, id } }
}
