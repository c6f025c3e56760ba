// What the self-managed TLS Secret holds and how it should change. Pure apart from key generation:
// given what is stored and the time, decide whether the CA or the serving certificate must be
// (re)issued. The Secret is a kubernetes.io/tls Secret whose ca.crt is the trust bundle (the
// signing CA first, then older CAs until they expire) and whose ca.key signs.
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { SocketAddress, isIP } from 'node:net'
import { createCertificateAuthority, createServingCertificate, describeCertificate, serviceDnsNames } from '../tls/certificate-authority.ts'

export const SECRET_KEYS = { cert: 'tls.crt', key: 'tls.key', caBundle: 'ca.crt', caKey: 'ca.key' } as const

const DAY_MS = 24 * 60 * 60 * 1000
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g

export interface TlsMaterial {
  /** Trust bundle, one PEM per entry: the signing CA first, then older CAs still valid. */
  readonly caBundle: readonly string[]
  readonly caKey: string
  readonly cert: string
  readonly key: string
}

/** What a Secret held, possibly partial or damaged. */
export interface StoredTls {
  readonly caBundle: readonly string[]
  readonly caKey: string | undefined
  readonly cert: string | undefined
  readonly key: string | undefined
}

export interface IssuePolicy {
  readonly service: string
  readonly namespace: string
  readonly dnsNames: readonly string[]
  readonly ipAddresses: readonly string[]
  readonly caValidityMs: number
  readonly certValidityMs: number
  /** Renew the CA when less than this remains; undefined: a third of its lifetime. */
  readonly caRenewBeforeMs: number | undefined
  /** Renew the serving certificate when less than this remains; undefined: a third of its lifetime. */
  readonly renewBeforeMs: number | undefined
}

export interface TlsPlan {
  readonly material: TlsMaterial
  /** Why the Secret must be written; empty when it is fine as stored. */
  readonly reasons: readonly string[]
}

/**
 * What a TLS Secret's `data` holds, base64-decoded; empty or missing keys read as undefined and the bundle
 * as the certificates found in `ca.crt`. Holds private keys: never log the result.
 */
export function readTlsSecretData(data: Readonly<Record<string, string>> | undefined): StoredTls {
  const text = (key: string): string | undefined => {
    const value = data?.[key]
    return value === undefined || value === '' ? undefined : Buffer.from(value, 'base64').toString('utf8')
  }
  return { caBundle: splitPemCertificates(text(SECRET_KEYS.caBundle) ?? ''), caKey: text(SECRET_KEYS.caKey), cert: text(SECRET_KEYS.cert), key: text(SECRET_KEYS.key) }
}

/** The Secret `data` (base64 values under tls.crt, tls.key, ca.crt, ca.key) for `material`; holds private keys. */
export function tlsSecretData(material: TlsMaterial): Record<string, string> {
  const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64')
  return {
    [SECRET_KEYS.cert]: b64(material.cert),
    [SECRET_KEYS.key]: b64(material.key),
    [SECRET_KEYS.caBundle]: b64(caBundlePem(material.caBundle)),
    [SECRET_KEYS.caKey]: b64(material.caKey),
  }
}

/**
 * The trust bundle as one PEM text: the certificates are already newline-terminated
 * (splitPemCertificates), so joined with nothing.
 */
export function caBundlePem(bundle: readonly string[]): string {
  return bundle.join('')
}

/** What goes into a webhook's clientConfig.caBundle. */
export function caBundleBase64(bundle: readonly string[]): string {
  return Buffer.from(caBundlePem(bundle), 'utf8').toString('base64')
}

/** One normalized PEM per certificate (LF line ends; forge writes CRLF), so bundles compare as text. */
export function splitPemCertificates(text: string): string[] {
  return [...text.matchAll(PEM_CERTIFICATE)].map((m) => `${m[0].replaceAll('\r\n', '\n')}\n`)
}

/** A certificate and key that parse and belong together. */
export function pairMatches(cert: string | undefined, key: string | undefined): boolean {
  const x509 = parse(cert)
  return x509 !== undefined && keyMatches(x509, key)
}

/**
 * What the Secret should hold at `now` (epoch ms), and why it must be written (no reason: leave it as is).
 * Issues a new CA when it is missing, does not match its key or is due (`caRenewBeforeMs`, else a third of
 * its lifetime); keeps older CAs in the bundle until they expire; reissues the serving certificate when
 * missing, mismatched, not signed by a trusted CA, named differently than the policy, expired, or due (not
 * in the same pass as a CA renewal, so the new CA reaches every caBundle first). Generates keys when
 * issuing (CPU-bound, synchronous); reads and writes nothing else.
 */
export function planTls(stored: StoredTls, policy: IssuePolicy, now: number): TlsPlan {
  const reasons: string[] = []
  const stale = stored.caBundle.map((pem) => ({ pem, x509: parse(pem) }))
  const signer = stale[0]?.x509
  let caReason: string | undefined
  if (!signer || stored.caKey === undefined) caReason = 'no CA'
  else if (!keyMatches(signer, stored.caKey)) caReason = 'the CA key does not match the CA certificate'
  else if (due(signer, now, policy.caRenewBeforeMs)) caReason = 'the CA is due for renewal'

  let ca = { certPem: stale[0]?.pem ?? '', keyPem: stored.caKey ?? '' }
  if (caReason !== undefined) {
    reasons.push(caReason)
    ca = createCertificateAuthority({ commonName: `volsync-autorestore-ca@${Math.floor(now / 1000)}`, days: policy.caValidityMs / DAY_MS, now: new Date(now) })
  }
  // Older CAs stay trusted until they expire, so certificates they signed keep working meanwhile.
  const fingerprints = new Set<string>()
  const caBundle: string[] = []
  const signing = splitPemCertificates(ca.certPem)[0] ?? ''
  for (const { pem, x509 } of [{ pem: signing, x509: parse(signing) }, ...stale]) {
    if (!x509 || notAfter(x509) <= now || fingerprints.has(x509.fingerprint256)) continue
    fingerprints.add(x509.fingerprint256)
    caBundle.push(pem)
  }
  if (caReason === undefined && caBundlePem(caBundle) !== caBundlePem(stored.caBundle)) reasons.push('expired or unreadable CAs dropped from the trust bundle')

  let serving = { certPem: stored.cert ?? '', keyPem: stored.key ?? '' }
  const certReason = servingReason(stored, caBundle, policy, now, caReason !== undefined)
  if (certReason !== undefined) {
    reasons.push(certReason)
    serving = createServingCertificate({
      ca,
      service: policy.service,
      namespace: policy.namespace,
      dnsNames: policy.dnsNames,
      ipAddresses: policy.ipAddresses,
      days: policy.certValidityMs / DAY_MS,
      now: new Date(now),
    })
  }
  return { material: { caBundle, caKey: ca.keyPem, cert: serving.certPem, key: serving.keyPem }, reasons }
}

function servingReason(stored: StoredTls, caBundle: readonly string[], policy: IssuePolicy, now: number, caRenewed: boolean): string | undefined {
  const x509 = parse(stored.cert)
  if (!x509 || stored.key === undefined) return 'no serving certificate'
  if (!keyMatches(x509, stored.key)) return 'the serving key does not match the serving certificate'
  if (!caBundle.some((pem) => issuedBy(x509, pem))) return 'the serving certificate is not signed by a trusted CA'
  if (!sameNames(stored.cert ?? '', policy)) return 'the serving certificate names changed'
  if (notAfter(x509) <= now) return 'the serving certificate expired'
  // Merely due: wait one pass after a CA renewal, so the new CA is in every caBundle before it signs what is served.
  if (due(x509, now, policy.renewBeforeMs) && !caRenewed) return 'the serving certificate is due for renewal'
  return undefined
}

function due(x509: X509Certificate, now: number, renewBeforeMs: number | undefined): boolean {
  const end = notAfter(x509)
  const before = renewBeforeMs ?? (end - new Date(x509.validFrom).getTime()) / 3
  return end - now < before
}

function notAfter(x509: X509Certificate): number {
  return new Date(x509.validTo).getTime()
}

function issuedBy(x509: X509Certificate, caPem: string): boolean {
  const ca = parse(caPem)
  return ca !== undefined && x509.checkIssued(ca) && x509.verify(ca.publicKey)
}

function sameNames(certPem: string, policy: IssuePolicy): boolean {
  const have = describeCertificate(certPem)
  const wantDns = new Set([...serviceDnsNames(policy.service, policy.namespace), ...policy.dnsNames].map((n) => n.trim()).filter((n) => n !== ''))
  // The certificate reports IPv6 compressed; compare in that form, or a long-form option would reissue every pass.
  const wantIps = new Set(policy.ipAddresses.map((ip) => (isIP(ip.trim()) === 6 ? new SocketAddress({ address: ip.trim(), family: 'ipv6' }).address : ip.trim())))
  const same = (a: readonly string[], b: Set<string>): boolean => a.length === b.size && a.every((v) => b.has(v))
  return same(have.dnsNames, wantDns) && same(have.ipAddresses, wantIps)
}

function keyMatches(x509: X509Certificate, key: string | undefined): boolean {
  if (key === undefined) return false
  try {
    return x509.checkPrivateKey(createPrivateKey(key))
  } catch {
    return false
  }
}

function parse(pem: string | undefined): X509Certificate | undefined {
  if (pem === undefined) return undefined
  try {
    return new X509Certificate(pem)
  } catch {
    return undefined
  }
}
