import t from 'tap'
import { createHmac } from 'node:crypto'
import { ContentDecryptor, indexBlobIv, packedContentIv } from '../../src/kopia/content-crypto.ts'
import { hkdfSha256 } from '../../src/kopia/key-derivation.ts'
import { sealContent, contentHash } from '../support/kopia-crypto.ts'
import vectors from '../fixtures/kopia/vectors.json' with { type: 'json' }

t.test("kopia's golden per-content ciphertexts decrypt (both algorithms)", async (t) => {
  t.equal(vectors.contentEncryption.cases.length, 4)
  for (const c of vectors.contentEncryption.cases) {
    const decryptor = new ContentDecryptor(c.algorithm, Buffer.from(c.masterKeyAscii, 'ascii'))
    const iv = Buffer.from(c.contentIdArgAscii, 'ascii')
    const plaintext = decryptor.open(Buffer.from(c.ciphertextHex, 'hex'), iv)
    t.equal(plaintext?.toString('ascii'), c.plaintextAscii, `${c.algorithm} / ${c.contentIdArgAscii}`)
    // The intermediate keys the document derived from kopia's construction.
    const kds = hkdfSha256(Buffer.from(c.masterKeyAscii, 'ascii'), 'encryption', Buffer.alloc(0))
    t.equal(kds.toString('hex'), c.derived.keyDerivationSecretHex)
    t.equal(createHmac('sha256', kds).update(iv).digest('hex'), c.derived.perContentKeyHex)
  }
})

t.test('a wrong iv, a flipped bit or a short box does not authenticate', async (t) => {
  const c = vectors.contentEncryption.cases[0]!
  const decryptor = new ContentDecryptor(c.algorithm, Buffer.from(c.masterKeyAscii, 'ascii'))
  const box = Buffer.from(c.ciphertextHex, 'hex')
  t.equal(decryptor.open(box, Buffer.from('00000000000000000000000000000000', 'ascii')), null, 'other iv')
  const flipped = Buffer.from(box)
  flipped[14]! ^= 1
  t.equal(decryptor.open(flipped, Buffer.from(c.contentIdArgAscii, 'ascii')), null, 'flipped ciphertext bit')
  t.equal(decryptor.open(box.subarray(0, 27), Buffer.from(c.contentIdArgAscii, 'ascii')), null, 'shorter than nonce + tag')
  t.throws(() => new ContentDecryptor('AES256-GCM-SIV', Buffer.alloc(32)), /unsupported content encryption/)
})

t.test('the test writer and the reader agree on both AEADs', async (t) => {
  const masterKey = Buffer.alloc(32, 7)
  const iv = Buffer.alloc(16, 3)
  for (const algorithm of ['AES256-GCM-HMAC-SHA256', 'CHACHA20-POLY1305-HMAC-SHA256'] as const) {
    const box = sealContent(algorithm, masterKey, iv, Buffer.from('manifest bytes'))
    t.equal(box.length, 14 + 28)
    t.equal(new ContentDecryptor(algorithm, masterKey).open(box, iv)?.toString(), 'manifest bytes', algorithm)
  }
})

t.test("HKDF matches kopia's key derivation test", async (t) => {
  for (const c of vectors.hkdf.cases) {
    t.equal(hkdfSha256(Buffer.from(c.ikmAscii), Buffer.from(c.saltAscii), Buffer.from(c.infoAscii), c.length).toString('hex'), c.outputHex)
  }
})

t.test('the writer hashes contents as kopia does (HMAC-SHA256 and -128)', async (t) => {
  for (const c of vectors.contentHashing.cases) {
    const data = 'dataHex' in c && typeof c.dataHex === 'string' ? Buffer.from(c.dataHex, 'hex') : Buffer.from(c.dataAscii ?? '', 'ascii')
    const hash = c.algorithm === 'HMAC-SHA256' ? 'HMAC-SHA256' : 'HMAC-SHA256-128'
    t.equal(contentHash(hash, Buffer.from(c.secretAscii, 'ascii'), data).toString('hex'), c.contentIdHex)
  }
})

t.test('index blob IVs come from the 32 hex digits before the first dash', async (t) => {
  for (const c of vectors.indexBlobIv.cases) t.equal(indexBlobIv(c.blobID)?.toString('hex'), c.ivHex, c.blobID)
  t.equal(indexBlobIv('xn0_1234-sabc-c1'), null, 'too short')
  t.equal(indexBlobIv('xn0_zz6fbb5922314df9a23907c18e49a5051'), null, 'not hex')
  // 32-byte hashes: only the last 32 hex digits count.
  t.equal(indexBlobIv(`n${'ab'.repeat(16)}${'cd'.repeat(16)}-s1`)?.toString('hex'), 'cd'.repeat(16))
})

t.test('packed content IVs are the last 16 bytes of the hash', async (t) => {
  for (const c of vectors.contentIds.indexKeys) {
    const iv = packedContentIv(c.id)
    t.equal(iv === null ? null : iv.toString('hex'), c.packedContentIvHex, c.id)
  }
  t.equal(packedContentIv(`k${'00'.repeat(16)}${'ef'.repeat(16)}`)?.toString('hex'), 'ef'.repeat(16), '32-byte hash')
})
