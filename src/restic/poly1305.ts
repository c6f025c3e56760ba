// Poly1305 one-time authenticator (RFC 8439 §2.5). Node's crypto exposes Poly1305 only inside
// ChaCha20-Poly1305, while restic uses it with an AES-derived key, so it is done here with BigInt:
// restic's config, key and snapshot files are a few hundred bytes, far from any hot path.

const P = (1n << 130n) - 5n
const CLAMP = 0x0ffffffc0ffffffc0ffffffc0fffffffn
const MASK_128 = (1n << 128n) - 1n
const HIBIT = 1n << 128n

/** The 16 bytes at `offset` as a little-endian 128-bit number. */
function le128(bytes: Uint8Array, offset: number): bigint {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, 16)
  return view.getBigUint64(0, true) | (view.getBigUint64(8, true) << 64n)
}

/**
 * The 16-byte tag of `message` under the 32-byte one-time `key` = r || s.
 * r is clamped here, as RFC 8439 (and Go's poly1305, which restic uses) do.
 */
export function poly1305(key: Uint8Array, message: Uint8Array): Buffer {
  if (key.length !== 32) throw new RangeError(`poly1305 key must be 32 bytes, got ${key.length}`)
  const r = le128(key, 0) & CLAMP
  const s = le128(key, 16)
  let acc = 0n
  const full = message.length - (message.length % 16)
  for (let i = 0; i < full; i += 16) {
    acc = ((acc + (le128(message, i) | HIBIT)) * r) % P
  }
  if (full < message.length) {
    // The last partial block gets its 0x01 byte right after the data, then zeros.
    const block = new Uint8Array(16)
    block.set(message.subarray(full))
    const tail = message.length - full
    acc = ((acc + (le128(block, 0) | (1n << BigInt(8 * tail)))) * r) % P
  }
  const tag = (acc + s) & MASK_128
  const out = Buffer.alloc(16)
  out.writeBigUInt64LE(tag & 0xffffffffffffffffn, 0)
  out.writeBigUInt64LE(tag >> 64n, 8)
  return out
}
