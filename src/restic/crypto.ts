// restic's authenticated encryption (doc/design.rst, "Keys, Encryption and MAC"): every file but
// key files and packs is IV(16) || AES-256-CTR ciphertext || MAC(16), where the MAC is
// Poly1305-AES over the ciphertext with the IV as nonce: Poly1305 key = r || AES-128_k(IV).
// The MAC is checked before anything is decrypted.
import { createCipheriv, createDecipheriv, timingSafeEqual } from 'node:crypto'
import { poly1305 } from './poly1305.ts'

export const IV_SIZE = 16
export const MAC_SIZE = 16
/** Bytes encryption adds to a plaintext. */
export const OVERHEAD = IV_SIZE + MAC_SIZE

/** An encryption key plus a Poly1305-AES MAC key: both a master key and a password-derived key look like this. */
export interface CipherKeys {
  /** AES-256 key, 32 bytes. */
  readonly encrypt: Buffer
  /** AES-128 key for the Poly1305 nonce encryption, 16 bytes. */
  readonly macK: Buffer
  /** Poly1305 r, 16 bytes, stored unclamped (poly1305() clamps). */
  readonly macR: Buffer
}

/** Keys from the 64 bytes scrypt gives: 32 AES-256 key, then 16 k and 16 r. */
export function cipherKeysFromBytes(bytes: Buffer): CipherKeys {
  if (bytes.length !== 64) throw new RangeError(`restic key material must be 64 bytes, got ${bytes.length}`)
  return { encrypt: Buffer.from(bytes.subarray(0, 32)), macK: Buffer.from(bytes.subarray(32, 48)), macR: Buffer.from(bytes.subarray(48, 64)) }
}

/** Poly1305-AES tag of `ciphertext` with `nonce` (the file's IV). */
export function poly1305Aes(keys: CipherKeys, nonce: Uint8Array, ciphertext: Uint8Array): Buffer {
  const aes = createCipheriv('aes-128-ecb', keys.macK, null).setAutoPadding(false)
  const s = Buffer.concat([aes.update(nonce), aes.final()])
  return poly1305(Buffer.concat([keys.macR, s]), ciphertext)
}

/** AES-256-CTR with the full 16-byte IV as the initial big-endian counter (Go's cipher.NewCTR, OpenSSL's aes-256-ctr). */
export function aes256Ctr(keys: CipherKeys, iv: Uint8Array, data: Uint8Array): Buffer {
  const ctr = createDecipheriv('aes-256-ctr', keys.encrypt, iv)
  return Buffer.concat([ctr.update(data), ctr.final()])
}

export type Opened =
  | { readonly ok: true; readonly plaintext: Buffer }
  | { readonly ok: false; readonly problem: 'too short' | 'zero IV' | 'MAC mismatch' }

/** Authenticates, then decrypts, IV || ciphertext || MAC. */
export function openSealed(keys: CipherKeys, sealed: Uint8Array): Opened {
  if (sealed.length < OVERHEAD) return { ok: false, problem: 'too short' }
  const iv = sealed.subarray(0, IV_SIZE)
  // restic refuses an all-zero nonce; it only appears in zero-filled (damaged) files.
  if (iv.every((b) => b === 0)) return { ok: false, problem: 'zero IV' }
  const ciphertext = sealed.subarray(IV_SIZE, sealed.length - MAC_SIZE)
  const mac = sealed.subarray(sealed.length - MAC_SIZE)
  if (!timingSafeEqual(poly1305Aes(keys, iv, ciphertext), mac)) return { ok: false, problem: 'MAC mismatch' }
  return { ok: true, plaintext: aes256Ctr(keys, iv, ciphertext) }
}
