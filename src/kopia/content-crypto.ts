// Per-content (and per-index-blob) authenticated encryption: key = HMAC-SHA256(HKDF(masterKey,
// salt "encryption"), iv), box = nonce(12) ‖ ciphertext ‖ tag(16), associated data = iv.
// The iv comes from the content hash or the blob name, so every box has its own key.
import { createDecipheriv, createHmac } from 'node:crypto'
import { hkdfSha256 } from './key-derivation.ts'

const NONCE_SIZE = 12
const TAG_SIZE = 16
const IV_SIZE = 16
export const CONTENT_OVERHEAD = NONCE_SIZE + TAG_SIZE

const CIPHERS: Readonly<Record<string, 'aes-256-gcm' | 'chacha20-poly1305'>> = {
  'AES256-GCM-HMAC-SHA256': 'aes-256-gcm',
  'CHACHA20-POLY1305-HMAC-SHA256': 'chacha20-poly1305',
}

/**
 * Opens kopia's per-content boxes (contents in packs, index blobs) with the repository's master key:
 * `open` returns null, never throws, when a box does not authenticate. The constructor throws on an
 * encryption other than AES256-GCM-HMAC-SHA256 and CHACHA20-POLY1305-HMAC-SHA256. Holds key material:
 * never log it.
 */
export class ContentDecryptor {
  readonly #cipher: 'aes-256-gcm' | 'chacha20-poly1305'
  readonly #keyDerivationSecret: Buffer

  constructor(encryption: string, masterKey: Buffer) {
    const cipher = CIPHERS[encryption]
    if (cipher === undefined) throw new Error(`unsupported content encryption ${JSON.stringify(encryption)}`)
    this.#cipher = cipher
    // Here the purpose is the HKDF *salt* with empty info (the format blob uses it the other way round).
    this.#keyDerivationSecret = hkdfSha256(masterKey, 'encryption', Buffer.alloc(0))
  }

  /** The plaintext, or null when the box does not authenticate under this iv. */
  open(box: Buffer, iv: Buffer): Buffer | null {
    if (box.length < CONTENT_OVERHEAD) return null
    const key = createHmac('sha256', this.#keyDerivationSecret).update(iv).digest()
    try {
      const nonce = box.subarray(0, NONCE_SIZE)
      const decipher = this.#cipher === 'aes-256-gcm'
        ? createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_SIZE })
        : createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_SIZE })
      decipher.setAAD(iv, { plaintextLength: box.length - CONTENT_OVERHEAD })
      decipher.setAuthTag(box.subarray(box.length - TAG_SIZE))
      const plaintext = decipher.update(box.subarray(NONCE_SIZE, box.length - TAG_SIZE))
      const rest = decipher.final() // empty for these stream ciphers: no second copy of a large content
      return rest.length === 0 ? plaintext : Buffer.concat([plaintext, rest])
    } catch {
      return null
    }
  }
}

const HEX = /^[0-9a-fA-F]*$/

/** IV of a packed content: the last 16 bytes of its hash (the ID without its prefix letter). */
export function packedContentIv(contentId: string): Buffer | null {
  const hash = contentId.length % 2 === 1 ? contentId.slice(1) : contentId
  if (hash.length < 2 * IV_SIZE || !HEX.test(hash)) return null
  return Buffer.from(hash.slice(hash.length - 2 * IV_SIZE), 'hex')
}

/** IV of an index blob or compaction log: the 32 hex characters right before the first '-' (or the end). */
export function indexBlobIv(blobId: string): Buffer | null {
  const dash = blobId.indexOf('-')
  const head = dash < 0 ? blobId : blobId.slice(0, dash)
  if (head.length < 2 * IV_SIZE) return null
  const hex = head.slice(head.length - 2 * IV_SIZE)
  return HEX.test(hex) ? Buffer.from(hex, 'hex') : null
}
