import { randomBytes } from 'node:crypto'
import t from 'tap'
import { cipherKeysFromBytes, openSealed, poly1305Aes, type CipherKeys } from '../../src/restic/crypto.ts'
import { seal } from '../support/restic-fixtures.ts'

const hex = (s: string) => Buffer.from(s, 'hex')
const macOnly = (k: string, r: string): CipherKeys => ({ encrypt: Buffer.alloc(32), macK: hex(k), macR: hex(r) })

// Poly1305-AES test vectors from Bernstein's paper (cr.yp.to/mac/poly1305-20050329.pdf), which
// restic's own crypto tests use too.
const paperVectors = [
  { msg: 'f3f6', r: '851fc40c3467ac0be05cc20404f3f700', k: 'ec074c835580741701425b623235add6', nonce: 'fb447350c4e868c52ac3275cf9d4327e', mac: 'f4c633c3044fc145f84f335cb81953de' },
  { msg: '', r: 'a0f3080000f46400d0c7e9076c834403', k: '75deaa25c09f208e1dc4ce6b5cad3fbf', nonce: '61ee09218d29b0aaed7e154a2c5509cc', mac: 'dd3fab2251f11ac759f0887129cc2ee7' },
  {
    msg: '663cea190ffb83d89593f3f476b6bc24d7e679107ea26adb8caf6652d0656136',
    r: '48443d0bb0d21109c89a100b5ce2c208',
    k: '6acb5f61a7176dd320c5c1eb2edcdc74',
    nonce: 'ae212a55399729595dea458bc621ff0e',
    mac: '0ee1c16bb73f0f4fd19881753c01cdbe',
  },
]

t.test('Poly1305-AES matches the paper\'s vectors', async (t) => {
  for (const v of paperVectors) {
    t.equal(poly1305Aes(macOnly(v.k, v.r), hex(v.nonce), hex(v.msg)).toString('hex'), v.mac, `msg ${v.msg || '(empty)'}`)
  }
})

t.test('opens restic\'s own test ciphertext', async (t) => {
  // From restic's internal/repository/crypto tests: keys, IV || ciphertext || MAC, plaintext.
  const keys: CipherKeys = {
    encrypt: hex('303e8687b1d7db18421bdc6bb8588ccadac4d59ee87b8ff70c44e635790cafef'),
    macK: hex('ef4d8824cb80b2bcc5fbff8a9b12a42c'),
    macR: hex('cc8d4b948ee0ebfe1d415de921d10353'),
  }
  const sealed = hex('69fb41c62d12def4593bd71757138606338f621aeaeb39da0fe4f99233f8037a54ea63338a813bcf3f75d8c3cc75dddf8750')
  const opened = openSealed(keys, sealed)
  t.ok(opened.ok)
  if (opened.ok) t.equal(opened.plaintext.toString(), 'Dies ist ein Test!')
})

t.test('round trip, and every kind of damage is refused before decrypting', async (t) => {
  const keys = cipherKeysFromBytes(randomBytes(64))
  const sealed = seal(keys, Buffer.from('{"hello":"world"}'))
  const opened = openSealed(keys, sealed)
  t.same(opened.ok && opened.plaintext.toString(), '{"hello":"world"}')

  for (const at of [0, 16, sealed.length - 1]) {
    const flipped = Buffer.from(sealed)
    flipped[at]! ^= 0x01
    t.same(openSealed(keys, flipped), { ok: false, problem: 'MAC mismatch' }, `flipped byte ${at}`)
  }
  t.same(openSealed(keys, sealed.subarray(0, sealed.length - 1)), { ok: false, problem: 'MAC mismatch' }, 'truncated')
  t.same(openSealed(keys, sealed.subarray(0, 31)), { ok: false, problem: 'too short' })
  const zeroIv = Buffer.from(sealed)
  zeroIv.fill(0, 0, 16)
  t.same(openSealed(keys, zeroIv), { ok: false, problem: 'zero IV' })
  t.same(openSealed(cipherKeysFromBytes(randomBytes(64)), sealed), { ok: false, problem: 'MAC mismatch' }, 'other keys')
})

t.test('an empty plaintext is 32 bytes sealed and opens to nothing', async (t) => {
  const keys = cipherKeysFromBytes(randomBytes(64))
  const sealed = seal(keys, Buffer.alloc(0))
  t.equal(sealed.length, 32)
  const opened = openSealed(keys, sealed)
  t.equal(opened.ok && opened.plaintext.length, 0)
})
