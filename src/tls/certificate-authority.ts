// Generates a private CA and a webhook serving certificate signed by it. node-forge only assembles
// the X.509 structures: keys come from node's OpenSSL and signatures are made with node's
// crypto.sign, because forge's pure-JS RSA takes ~800 ms per key and ~28 ms per signature versus
// ~55 ms and ~1 ms natively (measured on Node 24, RSA 2048).
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import { SocketAddress, isIP } from 'node:net'
import forge from 'node-forge'

export interface PemPair {
  certPem: string
  keyPem: string
}

export interface CertificateAuthorityOptions {
  commonName?: string
  /** Defaults to 3650 (10 years). */
  days?: number
  now?: Date
}

export interface ServingCertificateOptions {
  ca: PemPair
  service: string
  namespace: string
  /** Extra DNS SANs on top of the Service names, e.g. `localhost`. */
  dnsNames?: readonly string[]
  /** IP SANs, v4 or v6, e.g. `127.0.0.1`, `::1`. */
  ipAddresses?: readonly string[]
  /** Defaults to 365. Never extends past the CA's own expiry. */
  days?: number
  now?: Date
}

export interface CertificateDescription {
  subjectCommonName: string | undefined
  issuerCommonName: string | undefined
  dnsNames: string[]
  ipAddresses: string[]
  notBefore: Date
  notAfter: Date
  serialNumber: string
  fingerprint256: string
}

const DAY_MS = 24 * 60 * 60 * 1000
// Backdate so a peer whose clock runs slightly behind does not reject a brand-new certificate.
const CLOCK_SKEW_MS = 5 * 60 * 1000
const SHA256_WITH_RSA_OID = '1.2.840.113549.1.1.11'

// Present at runtime in every node-forge release but missing from @types/node-forge.
const forgeX509 = forge.pki as unknown as {
  getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1
}

/** DNS names by which the API server can reach a webhook Service. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`]
}

/**
 * A new self-signed CA (RSA 2048, SHA-256): `days` (default 3650) from `now`, backdated 5 minutes for
 * clock skew. CPU-bound and synchronous (key generation, ~55 ms); throws for a non-positive `days`.
 * Returns the private key as PEM: never log it.
 */
export function createCertificateAuthority(options: CertificateAuthorityOptions = {}): PemPair {
  const commonName = options.commonName ?? 'volsync-autorestore-ca'
  const now = options.now ?? new Date()
  const { publicKeyPem, privateKey, keyPem } = generateRsaKey()

  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem)
  cert.serialNumber = randomSerial()
  cert.validity.notBefore = new Date(now.getTime() - CLOCK_SKEW_MS)
  cert.validity.notAfter = new Date(now.getTime() + positiveDays(options.days ?? 3650) * DAY_MS)
  const subject = [{ name: 'commonName', value: commonName }]
  cert.setSubject(subject)
  cert.setIssuer(subject)
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: true },
  ])
  signWithNode(cert, privateKey)
  return { certPem: forge.pki.certificateToPem(cert), keyPem }
}

/**
 * A new serving certificate (RSA 2048, serverAuth) signed by `options.ca`, for the Service's DNS names
 * plus `dnsNames` and `ipAddresses`: `days` (default 365) from `now`, never past the CA's expiry,
 * backdated 5 minutes. Throws when the CA certificate and key do not match or `days` is not positive.
 * CPU-bound and synchronous; the returned private key must never be logged.
 */
export function createServingCertificate(options: ServingCertificateOptions): PemPair {
  const now = options.now ?? new Date()
  const caCert = forge.pki.certificateFromPem(options.ca.certPem)
  const caKey = createPrivateKey(options.ca.keyPem)
  // Fail here with a clear message rather than emitting a certificate nobody can verify.
  if (!new X509Certificate(options.ca.certPem).checkPrivateKey(caKey)) {
    throw new Error('CA certificate and CA private key do not match')
  }

  const dnsNames = unique([...serviceDnsNames(options.service, options.namespace), ...(options.dnsNames ?? [])])
  const ipAddresses = unique(options.ipAddresses ?? [])
  const { publicKeyPem, keyPem } = generateRsaKey()

  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem)
  cert.serialNumber = randomSerial()
  cert.validity.notBefore = new Date(now.getTime() - CLOCK_SKEW_MS)
  const wanted = now.getTime() + positiveDays(options.days ?? 365) * DAY_MS
  cert.validity.notAfter = new Date(Math.min(wanted, caCert.validity.notAfter.getTime()))
  cert.setSubject([{ name: 'commonName', value: `${options.service}.${options.namespace}.svc` }])
  cert.setIssuer(caCert.subject.attributes)
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        ...dnsNames.map((value) => ({ type: 2, value })),
        ...ipAddresses.map((ip) => ({ type: 7, value: ipBytes(ip) })),
      ],
    },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ])
  signWithNode(cert, caKey)
  return { certPem: forge.pki.certificateToPem(cert), keyPem }
}

/**
 * The names, validity and fingerprint of a PEM certificate (the first in the text), as the status page and
 * the TLS planner compare them; IPv6 addresses in compressed form. Throws when `pem` is not a certificate.
 */
export function describeCertificate(pem: string): CertificateDescription {
  const x509 = new X509Certificate(pem)
  const altNames = splitSubjectAltName(x509.subjectAltName)
  return {
    subjectCommonName: commonNameOf(x509.subject),
    issuerCommonName: commonNameOf(x509.issuer),
    dnsNames: altNames.filter((n) => n.startsWith('DNS:')).map((n) => n.slice(4)),
    ipAddresses: altNames.filter((n) => n.startsWith('IP Address:')).map((n) => normalizeIp(n.slice(11))),
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    serialNumber: x509.serialNumber,
    fingerprint256: x509.fingerprint256,
  }
}

function generateRsaKey(): { publicKeyPem: string; privateKey: KeyObject; keyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKey,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  }
}

// Mirrors forge's Certificate#sign, with the RSA operation done by OpenSSL.
function signWithNode(cert: forge.pki.Certificate, key: KeyObject): void {
  cert.signatureOid = SHA256_WITH_RSA_OID
  cert.siginfo.algorithmOid = SHA256_WITH_RSA_OID
  cert.tbsCertificate = forgeX509.getTBSCertificate(cert)
  const tbs = Buffer.from(forge.asn1.toDer(cert.tbsCertificate).getBytes(), 'binary')
  cert.signature = sign('sha256', tbs, key).toString('binary')
}

// 16 random bytes with the top bits fixed: positive (DER INTEGER) and minimally encoded.
function randomSerial(): string {
  const bytes = randomBytes(16)
  bytes[0] = ((bytes[0] ?? 0) & 0x3f) | 0x40
  return bytes.toString('hex')
}

// forge's own IP parser is untyped and rejects IPv4-embedded IPv6, so encode the octets here.
function ipBytes(ip: string): string {
  const family = isIP(ip)
  if (family === 4) return Buffer.from(ipv4Octets(ip)).toString('binary')
  if (family !== 6 || ip.includes('%')) throw new Error(`not an IP address usable in a certificate: ${ip}`)
  // isIP validated the syntax, so only '::' expansion and a dotted IPv4 tail remain to handle.
  const groups = (part: string): number[] =>
    part === '' ? [] : part.split(':').flatMap((g) => {
      if (!g.includes('.')) return [parseInt(g, 16)]
      const [a = 0, b = 0, c = 0, d = 0] = ipv4Octets(g)
      return [(a << 8) | b, (c << 8) | d]
    })
  const [head = '', tail] = ip.split('::')
  const left = groups(head)
  const right = tail === undefined ? [] : groups(tail)
  const all = tail === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right]
  const buf = Buffer.alloc(16)
  all.forEach((g, i) => buf.writeUInt16BE(g, i * 2))
  return buf.toString('binary')
}

function ipv4Octets(ip: string): number[] {
  return ip.split('.').map((octet) => Number.parseInt(octet, 10))
}

// OpenSSL prints IPv6 SANs fully expanded; compress them so callers can compare with what they passed in.
function normalizeIp(ip: string): string {
  return isIP(ip) === 6 ? new SocketAddress({ address: ip, family: 'ipv6' }).address : ip
}

function positiveDays(days: number): number {
  if (!Number.isFinite(days) || days <= 0) throw new Error(`certificate validity must be a positive number of days, got ${days}`)
  return days
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values.map((v) => v.trim()).filter((v) => v.length > 0))]
}

function commonNameOf(distinguishedName: string): string | undefined {
  for (const line of distinguishedName.split('\n')) {
    if (line.startsWith('CN=')) return line.slice(3)
  }
  return undefined
}

// Node renders SANs as `DNS:a, IP Address:1.2.3.4`; names containing ", " come back JSON-quoted.
function splitSubjectAltName(san: string | undefined): string[] {
  if (!san) return []
  const parts: string[] = []
  const re = /([A-Za-z ]+:)("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/gy
  let match: RegExpExecArray | null
  while ((match = re.exec(san)) !== null && match[0].length > 0) {
    const [, prefix = '', raw = ''] = match
    parts.push(prefix + (raw.startsWith('"') ? (JSON.parse(raw) as string) : raw))
  }
  return parts
}
