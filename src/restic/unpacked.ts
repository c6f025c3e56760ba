// restic's "unpacked" files (config, snapshots, index, locks; doc/design.rst "Unpacked Data
// Format"): IV || ciphertext || MAC around a JSON document. From repository version 2 on the
// plaintext may start with an encoding byte: '{' or '[' mean the whole plaintext is JSON, 2 means
// zstd-compressed JSON follows. Version 1 plaintext is always JSON.
import { promisify } from 'node:util'
import { zstdDecompress } from 'node:zlib'
import { openSealed, type CipherKeys } from './crypto.ts'
import { errorMessage } from '../errors.ts'
import { ResticError } from './errors.ts'

const decompress = promisify(zstdDecompress)

/** Decompressed JSON larger than this is refused: real snapshot/config documents are a few KiB. */
export const MAX_DOCUMENT_BYTES = 64 * 1024 * 1024

const COMPRESSED_V2 = 2
const OPEN_BRACE = 0x7b
const OPEN_BRACKET = 0x5b

export interface UnpackContext {
  readonly location: string
  /** Repository version; before the config is read, the widest (2). */
  readonly version: 1 | 2
  readonly keys: CipherKeys
}

function corrupt(context: UnpackContext, file: string, reason: string, cause?: unknown): ResticError {
  return new ResticError('corrupt', context.location, file, `restic file ${context.location}${file} is corrupt: ${reason}`, cause === undefined ? undefined : { cause })
}

/** The JSON text inside a decrypted plaintext. */
async function plainJson(context: UnpackContext, file: string, plaintext: Buffer): Promise<Buffer> {
  const first = plaintext[0]
  if (context.version === 1 || first === OPEN_BRACE || first === OPEN_BRACKET) return plaintext
  if (first !== COMPRESSED_V2) {
    const shown = first === undefined ? 'empty plaintext' : `encoding byte ${first}`
    throw new ResticError('unsupported', context.location, file, `restic file ${context.location}${file} uses an unsupported encoding (${shown})`)
  }
  try {
    return await decompress(plaintext.subarray(1), { maxOutputLength: MAX_DOCUMENT_BYTES })
  } catch (error) {
    const reason = errorMessage(error)
    throw corrupt(context, file, `zstd: ${reason}`, error)
  }
}

/** Authenticates, decrypts, decompresses and parses one unpacked file. */
export async function openUnpackedJson(context: UnpackContext, file: string, sealed: Buffer): Promise<unknown> {
  const opened = openSealed(context.keys, sealed)
  if (!opened.ok) {
    const detail =
      opened.problem === 'too short' ? `too short (${sealed.length} bytes), truncated?` : opened.problem === 'MAC mismatch' ? 'MAC mismatch (damaged or truncated)' : opened.problem
    throw corrupt(context, file, detail)
  }
  const json = await plainJson(context, file, opened.plaintext)
  try {
    return JSON.parse(json.toString('utf8')) as unknown
  } catch (error) {
    throw corrupt(context, file, 'not JSON after decryption', error)
  }
}
