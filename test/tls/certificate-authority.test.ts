import { X509Certificate, createPrivateKey } from 'node:crypto'
import forge from 'node-forge'
import t from 'tap'
import {
  createCertificateAuthority,
  createServingCertificate,
  describeCertificate,
  serviceDnsNames,
} from '../../src/tls/certificate-authority.ts'

const DAY_MS = 24 * 60 * 60 * 1000
const SERVER_AUTH_OID = '1.3.6.1.5.5.7.3.1'

const started = performance.now()
const ca = createCertificateAuthority({ commonName: 'test-ca' })
const serving = createServingCertificate({
  ca,
  service: 'volsync-autorestore',
  namespace: 'volsync-system',
  dnsNames: ['localhost'],
  ipAddresses: ['127.0.0.1', '::1'],
  days: 30,
})
t.comment(`CA + serving certificate generated in ${(performance.now() - started).toFixed(0)} ms`)
const caX509 = new X509Certificate(ca.certPem)
const servingX509 = new X509Certificate(serving.certPem)

t.test('CA is a self-signed 10-year certificate authority', async (t) => {
  t.ok(caX509.ca, 'basicConstraints cA')
  t.ok(caX509.verify(caX509.publicKey), 'self-signed')
  t.ok(caX509.checkPrivateKey(createPrivateKey(ca.keyPem)), 'key matches')
  const info = describeCertificate(ca.certPem)
  t.equal(info.subjectCommonName, 'test-ca')
  t.equal(info.issuerCommonName, 'test-ca')
  t.ok(info.notAfter.getTime() - Date.now() >= 3649 * DAY_MS, 'about ten years left')
  t.ok(info.notBefore.getTime() <= Date.now(), 'already valid')
  const keyUsage = forge.pki.certificateFromPem(ca.certPem).getExtension('keyUsage') as { keyCertSign?: boolean; cRLSign?: boolean } | undefined
  t.ok(keyUsage?.keyCertSign, 'keyCertSign')
  t.ok(keyUsage?.cRLSign, 'cRLSign')
})

t.test('serving certificate is signed by the CA and covers the Service names', async (t) => {
  t.notOk(servingX509.ca, 'not a CA')
  t.ok(servingX509.verify(caX509.publicKey), 'signature verifies against the CA key')
  t.ok(servingX509.checkIssued(caX509), 'issued by the CA')
  t.notOk(servingX509.verify(servingX509.publicKey), 'not self-signed')
  t.ok(servingX509.checkPrivateKey(createPrivateKey(serving.keyPem)), 'key matches')
  t.same(servingX509.keyUsage, [SERVER_AUTH_OID], 'extKeyUsage serverAuth')

  const names = [
    'volsync-autorestore',
    'volsync-autorestore.volsync-system',
    'volsync-autorestore.volsync-system.svc',
    'volsync-autorestore.volsync-system.svc.cluster.local',
  ]
  t.same(serviceDnsNames('volsync-autorestore', 'volsync-system'), names)
  for (const name of [...names, 'localhost']) t.equal(servingX509.checkHost(name), name, `checkHost ${name}`)
  t.equal(servingX509.checkHost('evil.example'), undefined, 'other hosts rejected')
  t.equal(servingX509.checkHost('x.volsync-autorestore.volsync-system.svc'), undefined, 'no wildcard')
  t.equal(servingX509.checkIP('127.0.0.1'), '127.0.0.1')
  t.ok(servingX509.checkIP('::1'), 'IPv6 loopback')
  t.equal(servingX509.checkIP('10.0.0.1'), undefined, 'other IPs rejected')

  const info = describeCertificate(serving.certPem)
  t.equal(info.subjectCommonName, 'volsync-autorestore.volsync-system.svc')
  t.equal(info.issuerCommonName, 'test-ca')
  t.same(info.dnsNames, [...names, 'localhost'])
  t.same(info.ipAddresses, ['127.0.0.1', '::1'])
  const daysLeft = (info.notAfter.getTime() - Date.now()) / DAY_MS
  t.ok(daysLeft > 29.9 && daysLeft <= 30, `validity follows days option (${daysLeft.toFixed(2)})`)
})

t.test('defaults, deduplication and unusual IPs', async (t) => {
  const cert = createServingCertificate({
    ca,
    service: 'svc',
    namespace: 'ns',
    dnsNames: ['svc.ns.svc', ' localhost ', ''],
    ipAddresses: ['fd00:1::2:3', '::ffff:10.1.2.3'],
  })
  const info = describeCertificate(cert.certPem)
  t.same(info.dnsNames, ['svc', 'svc.ns', 'svc.ns.svc', 'svc.ns.svc.cluster.local', 'localhost'])
  t.same(info.ipAddresses, ['fd00:1::2:3', '::ffff:10.1.2.3'])
  t.ok(new X509Certificate(cert.certPem).checkIP('::ffff:10.1.2.3'), 'IPv4-mapped IPv6')
  const daysLeft = (info.notAfter.getTime() - Date.now()) / DAY_MS
  t.ok(daysLeft > 364.9 && daysLeft <= 365, 'one year by default')
  t.not(info.serialNumber, describeCertificate(serving.certPem).serialNumber, 'serials differ')
  t.not(info.fingerprint256, describeCertificate(serving.certPem).fingerprint256)
})

t.test('serving certificate never outlives its CA', async (t) => {
  const shortCa = createCertificateAuthority({ days: 10 })
  const cert = createServingCertificate({ ca: shortCa, service: 's', namespace: 'n', days: 365 })
  t.equal(describeCertificate(cert.certPem).notAfter.getTime(), describeCertificate(shortCa.certPem).notAfter.getTime())
})

t.test('bad input is refused', async (t) => {
  t.throws(() => createServingCertificate({ ca, service: 's', namespace: 'n', ipAddresses: ['localhost'] }), /not an IP address/)
  t.throws(() => createServingCertificate({ ca, service: 's', namespace: 'n', ipAddresses: ['fe80::1%eth0'] }), /not an IP address/)
  t.throws(() => createServingCertificate({ ca, service: 's', namespace: 'n', days: 0 }), /positive number of days/)
  t.throws(() => createCertificateAuthority({ days: Number.NaN }), /positive number of days/)
  t.throws(
    () => createServingCertificate({ ca: { certPem: ca.certPem, keyPem: serving.keyPem }, service: 's', namespace: 'n' }),
    /do not match/,
  )
})
