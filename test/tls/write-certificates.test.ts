import { X509Certificate, createPrivateKey } from 'node:crypto'
import { readFileSync, readdirSync, statSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { describeCertificate } from '../../src/tls/certificate-authority.ts'
import { ensureDevCertificate, writeCertificates } from '../../src/tls/write-certificates.ts'

const modeOf = (path: string): number => statSync(path).mode & 0o777

t.test('writeCertificates writes a CA and serving pair with safe modes', async (t) => {
  const outDir = join(t.testdir(), 'nested', 'certs')
  const paths = await writeCertificates({
    outDir,
    service: 'hook',
    namespace: 'ops',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    days: 7,
  })
  t.same(paths, {
    caCert: join(outDir, 'ca.crt'),
    caKey: join(outDir, 'ca.key'),
    tlsCert: join(outDir, 'tls.crt'),
    tlsKey: join(outDir, 'tls.key'),
    reusedCa: false,
  })
  t.equal(modeOf(paths.caKey), 0o600, 'ca.key is 0600')
  t.equal(modeOf(paths.tlsKey), 0o600, 'tls.key is 0600')
  t.equal(modeOf(paths.caCert), 0o644, 'ca.crt is 0644')
  t.equal(modeOf(paths.tlsCert), 0o644, 'tls.crt is 0644')
  t.same(readdirSync(outDir).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'], 'no temporary files left')

  const ca = new X509Certificate(readFileSync(paths.caCert))
  const tls = new X509Certificate(readFileSync(paths.tlsCert))
  t.ok(tls.verify(ca.publicKey), 'tls.crt verifies against ca.crt')
  t.ok(tls.checkPrivateKey(createPrivateKey(readFileSync(paths.tlsKey))), 'tls.key matches tls.crt')
  t.equal(tls.checkHost('hook.ops.svc'), 'hook.ops.svc')
  t.equal(tls.checkHost('localhost'), 'localhost')
  t.equal(tls.checkIP('127.0.0.1'), '127.0.0.1')
  const daysLeft = (describeCertificate(tls.toString()).notAfter.getTime() - Date.now()) / 86_400_000
  t.ok(daysLeft > 6.9 && daysLeft <= 7, 'days honoured')

  const before = tls.fingerprint256
  const again = await writeCertificates({ outDir, service: 'hook', namespace: 'ops' })
  t.equal(again.reusedCa, true)
  t.not(new X509Certificate(readFileSync(paths.tlsCert)).fingerprint256, before, 'rewriting replaces the serving pair')
  t.equal(new X509Certificate(readFileSync(paths.caCert)).fingerprint256, ca.fingerprint256, 'and keeps the CA')
  t.equal(modeOf(paths.tlsKey), 0o600, 'still 0600 after replacement')
  t.equal(readdirSync(outDir).length, 4)
})

t.test('ensureDevCertificate creates a localhost certificate once', async (t) => {
  const dir = t.testdir()
  const certFile = join(dir, 'tls', 'tls.crt')
  const keyFile = join(dir, 'tls', 'tls.key')

  const first = await ensureDevCertificate(certFile, keyFile)
  t.same(first, { created: true, caFile: join(dir, 'tls', 'ca.crt') })
  t.equal(modeOf(keyFile), 0o600)
  t.equal(modeOf(join(dir, 'tls', 'ca.key')), 0o600)
  const ca = new X509Certificate(readFileSync(first.caFile))
  const cert = new X509Certificate(readFileSync(certFile))
  t.ok(cert.verify(ca.publicKey), 'signed by the CA beside it')
  t.equal(cert.checkHost('localhost'), 'localhost')
  t.equal(cert.checkHost('volsync-autorestore.volsync-system.svc'), 'volsync-autorestore.volsync-system.svc')
  t.equal(cert.checkIP('127.0.0.1'), '127.0.0.1')
  t.ok(cert.checkIP('::1'))

  const second = await ensureDevCertificate(certFile, keyFile)
  t.same(second, { created: false, caFile: first.caFile }, 'existing pair is kept')
  t.equal(new X509Certificate(readFileSync(certFile)).fingerprint256, cert.fingerprint256)

  unlinkSync(keyFile)
  const third = await ensureDevCertificate(certFile, keyFile)
  t.ok(third.created, 'a missing key triggers regeneration')
  t.not(new X509Certificate(readFileSync(certFile)).fingerprint256, cert.fingerprint256)
  t.equal(new X509Certificate(readFileSync(first.caFile)).fingerprint256, ca.fingerprint256, 'signed by the same CA: clients that trust it still do')
})

t.test('an existing CA is reused; a half or unusable one is refused unless newCa (issue 13 item 8)', async (t) => {
  const outDir = t.testdir()
  const options = { outDir, service: 'hook', namespace: 'ops' }
  const first = await writeCertificates(options)
  const caPem = readFileSync(first.caCert, 'utf8')
  const caKeyPem = readFileSync(first.caKey, 'utf8')
  const second = await writeCertificates({ ...options, dnsNames: ['extra.example'] })
  t.equal(second.reusedCa, true)
  t.equal(readFileSync(first.caCert, 'utf8'), caPem, 'ca.crt untouched: the caBundle made from it stays valid')
  t.equal(readFileSync(first.caKey, 'utf8'), caKeyPem)
  const served = new X509Certificate(readFileSync(first.tlsCert))
  t.ok(served.verify(new X509Certificate(caPem).publicKey), 'the new serving certificate is signed by the existing CA')
  t.equal(served.checkHost('extra.example'), 'extra.example', 'with the new names')

  const renewed = await writeCertificates({ ...options, newCa: true })
  t.equal(renewed.reusedCa, false)
  t.not(readFileSync(first.caCert, 'utf8'), caPem, 'newCa replaces it')

  unlinkSync(first.caKey)
  const beforeRefusal = readFileSync(first.tlsCert, 'utf8')
  await t.rejects(writeCertificates(options), { name: 'ExistingCaError', message: /ca\.crt exists without .*ca\.key: remove both .* or pass --new-ca/ })
  t.equal(readFileSync(first.tlsCert, 'utf8'), beforeRefusal, 'nothing written when refused')
  const replaced = await writeCertificates({ ...options, newCa: true })
  t.equal(replaced.reusedCa, false)
  t.same(readdirSync(outDir).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'])
})
