// An index blob as stored: encrypted whole with the IV taken from its own name, then v1 or v2 by
// its first byte (kopia dispatches on that byte, not on the repository's indexVersion).
import { type ContentDecryptor, indexBlobIv } from './content-crypto.ts'
import { type BlobContext, corrupt } from './errors.ts'
import type { ParsedIndex } from './index-entry.ts'
import { openIndexV1 } from './index-v1.ts'
import { openIndexV2 } from './index-v2.ts'

/** Decrypts a blob encrypted by name (index blobs, legacy compaction logs). */
export function decryptNamedBlob(ciphertext: Buffer, decryptor: ContentDecryptor, ctx: BlobContext): Buffer {
  const iv = indexBlobIv(ctx.blobId)
  if (iv === null) throw corrupt(ctx, 'blob name does not carry the 32 hex digits its IV is taken from')
  const plaintext = decryptor.open(ciphertext, iv)
  if (plaintext === null) throw corrupt(ctx, `blob (${ciphertext.length} bytes) does not decrypt: damaged or truncated`)
  return plaintext
}

/** Parses decrypted index bytes (what kopia caches as `indexes/<blobID>.sndx`). */
export function parseIndex(plaintext: Buffer, ctx: BlobContext): ParsedIndex {
  const version = plaintext[0]
  if (version === 1) return openIndexV1(plaintext, ctx)
  if (version === 2) return openIndexV2(plaintext, ctx)
  throw corrupt(ctx, version === undefined ? 'index is empty' : `index format version ${version} is unknown`)
}
