// Test-only: the WRITE side of kopia's cryptography, written from the read-path document on its
// own (no imports from src/kopia) so that a mistake shared by reader and writer cannot hide.
import { createCipheriv, createHmac, hkdfSync, pbkdf2Sync, randomBytes, scryptSync } from 'node:crypto'

export type ContentEncryption = 'AES256-GCM-HMAC-SHA256' | 'CHACHA20-POLY1305-HMAC-SHA256'
export type KeyAlgorithm = 'scrypt-65536-8-1' | 'pbkdf2-sha256-600000'

function hkdf(ikm: Buffer, salt: Buffer, info: Buffer, length = 32): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, length))
}

const derived = new Map<string, Buffer>()

/** Password -> format key; memoized so that many test repositories sharing a uniqueID derive once. */
export function formatKeyFor(password: string, uniqueId: Buffer, algorithm: KeyAlgorithm): Buffer {
  const memo = `${uniqueId.toString('hex')}/${algorithm}/${password}`
  let key = derived.get(memo)
  if (key === undefined) {
    key = algorithm === 'scrypt-65536-8-1'
      ? scryptSync(Buffer.from(password, 'utf8'), uniqueId, 32, { N: 65536, r: 8, p: 1, maxmem: 256 * 1024 * 1024 })
      : pbkdf2Sync(Buffer.from(password, 'utf8'), uniqueId, 600_000, 32, 'sha256')
    derived.set(memo, key)
  }
  return key
}

/** The `encryptedBlockFormat` box: AES-256-GCM, key HKDF(info "AES"), AAD HKDF(info "CHECKSUM"). */
export function sealFormat(plaintext: Buffer, formatKey: Buffer, uniqueId: Buffer): Buffer {
  const key = hkdf(formatKey, uniqueId, Buffer.from('AES'))
  const aad = hkdf(formatKey, uniqueId, Buffer.from('CHECKSUM'))
  const nonce = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  cipher.setAAD(aad)
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return Buffer.concat([nonce, body, cipher.getAuthTag()])
}

/** Per-content AEAD box, nonce ‖ ciphertext ‖ tag, keyed by HMAC(HKDF(masterKey, salt "encryption"), iv). */
export function sealContent(encryption: ContentEncryption, masterKey: Buffer, iv: Buffer, plaintext: Buffer): Buffer {
  const secret = hkdf(masterKey, Buffer.from('encryption'), Buffer.alloc(0))
  const key = createHmac('sha256', secret).update(iv).digest()
  const nonce = randomBytes(12)
  const cipher = encryption === 'AES256-GCM-HMAC-SHA256'
    ? createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 })
    : createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 })
  cipher.setAAD(iv, { plaintextLength: plaintext.length })
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return Buffer.concat([nonce, body, cipher.getAuthTag()])
}

/** Content hash HMAC-SHA256-128 (or the full 32 bytes for HMAC-SHA256). */
export function contentHash(hash: 'HMAC-SHA256-128' | 'HMAC-SHA256', secret: Buffer, data: Buffer): Buffer {
  const full = createHmac('sha256', secret).update(data).digest()
  return hash === 'HMAC-SHA256' ? full : full.subarray(0, 16)
}

/** The v1 pack preamble: L(2, LE) ‖ raw ‖ HMAC-SHA256("kopia-repository", raw) ‖ L(2, LE). */
export function checksummedFormatBlob(raw: Buffer): Buffer {
  const body = Buffer.concat([raw, createHmac('sha256', 'kopia-repository').update(raw).digest()])
  const length = Buffer.alloc(2)
  length.writeUInt16LE(body.length)
  return Buffer.concat([length, body, length])
}
