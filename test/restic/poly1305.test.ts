import { createCipheriv, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import t from 'tap'
import { poly1305 } from '../../src/restic/poly1305.ts'

const hex = (s: string) => Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex')

t.test('RFC 8439 §2.5.2 test vector', async (t) => {
  const key = hex('85:d6:be:78:57:55:6d:33:7f:44:52:fe:42:d5:06:a8:01:03:80:8a:fb:0d:b2:fd:4a:bf:f6:af:41:49:f5:1b')
  const tag = poly1305(key, Buffer.from('Cryptographic Forum Research Group'))
  t.equal(tag.toString('hex'), 'a8061dc1305136c6c22b8baf0c0127a9')
})

t.test('RFC 8439 A.3 vectors: zero key, and r = 0 with s added straight through', async (t) => {
  t.equal(poly1305(Buffer.alloc(32), Buffer.alloc(64)).toString('hex'), '00000000000000000000000000000000')
  const s = hex('36e5f6b5c5e06070f0efca96227a863e')
  const text = Buffer.from('Any submission to the IETF intended by the Contributor for publication as all or part of an IETF Internet-Draft or RFC and any statement made within the context of an IETF activity is considered an "IETF Contribution". Such statements include oral statements in IETF sessions, as well as written and electronic communications made at any time or place, which are addressed to')
  t.equal(poly1305(Buffer.concat([Buffer.alloc(16), s]), text).toString('hex'), '36e5f6b5c5e06070f0efca96227a863e')
})

t.test('RFC 8439 A.3 #5/#6: reduction edge cases', async (t) => {
  // r = 2, message all 0xff: the accumulator reaches exactly 2^130 - 5 territory.
  const r2 = Buffer.concat([hex('02000000000000000000000000000000'), Buffer.alloc(16)])
  t.equal(poly1305(r2, hex('ffffffffffffffffffffffffffffffff')).toString('hex'), '03000000000000000000000000000000')
  const sff = Buffer.concat([hex('02000000000000000000000000000000'), hex('ffffffffffffffffffffffffffffffff')])
  t.equal(poly1305(sff, hex('02000000000000000000000000000000')).toString('hex'), '03000000000000000000000000000000')
})

// Node only has Poly1305 inside chacha20-poly1305; its tag is Poly1305 under the one-time key
// (first 32 bytes of ChaCha20 block 0) over ciphertext || pad16 || le64(0) || le64(len).
function aeadTagViaOurPoly1305(key: Buffer, nonce: Buffer, ciphertext: Buffer): Buffer {
  const block0 = createCipheriv('chacha20', key, Buffer.concat([Buffer.alloc(4), nonce])).update(Buffer.alloc(32))
  const pad = Buffer.alloc((16 - (ciphertext.length % 16)) % 16)
  const lengths = Buffer.alloc(16)
  lengths.writeBigUInt64LE(BigInt(ciphertext.length), 8)
  return poly1305(block0, Buffer.concat([ciphertext, pad, lengths]))
}

t.test('agrees with the Poly1305 inside Node\'s chacha20-poly1305 for any length', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (plain) => {
      const key = randomBytes(32)
      const nonce = randomBytes(12)
      const aead = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 })
      const ciphertext = Buffer.concat([aead.update(plain), aead.final()])
      return aeadTagViaOurPoly1305(key, nonce, ciphertext).equals(aead.getAuthTag())
    }),
    { numRuns: 300 },
  )
  t.pass('300 random messages')
})

t.test('refuses a key that is not 32 bytes', async (t) => {
  t.throws(() => poly1305(Buffer.alloc(16), Buffer.alloc(0)), RangeError)
})
