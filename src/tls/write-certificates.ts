// Puts generated certificates on disk. Every file is written to a temporary name in the same
// directory and renamed into place, so a watcher (ReloadingTlsContext) never reads half a file.
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto'
import { access, mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { createCertificateAuthority, createServingCertificate, type PemPair } from './certificate-authority.ts'

export interface WriteCertificatesOptions {
  outDir: string
  service: string
  namespace: string
  dnsNames?: readonly string[]
  ipAddresses?: readonly string[]
  /** Serving certificate validity; a new CA always gets 10 years. */
  days?: number
  /** Replace a CA already in `outDir` with a new one (every caBundle made from the old one stops working). */
  newCa?: boolean
}

/** Refused to touch the CA in the output directory (unusable, or only half of it there); the message says what to do. */
export class ExistingCaError extends Error {
  override readonly name = 'ExistingCaError'
}

export interface CertificatePaths {
  caCert: string
  caKey: string
  tlsCert: string
  tlsKey: string
}

interface PendingFile {
  path: string
  contents: string
  mode: number
}

const CERT_MODE = 0o644
const KEY_MODE = 0o600

/**
 * Writes a serving certificate for `service`.`namespace` (`days`) into `outDir` (created if needed), signed
 * by the CA already there (ca.crt + ca.key, which are then left untouched, so a caBundle made from them
 * stays valid: as cert-manager keeps its issuer's CA) or, when there is none or `newCa` is set, by a new CA
 * (10 years) written beside it. Each file goes to a temporary file renamed into place, keys mode 0600,
 * certificates 0644; tls.key and tls.crt are replaced. Rejects with ExistingCaError when only one of ca.crt
 * and ca.key exists, or they do not match, or the CA has expired (without `newCa`), and on any file error
 * (removing its temporary files). `reusedCa` says which happened.
 */
export async function writeCertificates(options: WriteCertificatesOptions): Promise<CertificatePaths & { reusedCa: boolean }> {
  const paths: CertificatePaths = {
    caCert: join(options.outDir, 'ca.crt'),
    caKey: join(options.outDir, 'ca.key'),
    tlsCert: join(options.outDir, 'tls.crt'),
    tlsKey: join(options.outDir, 'tls.key'),
  }
  const existing = options.newCa ? undefined : await readExistingCa(paths.caCert, paths.caKey)
  const ca = existing ?? createCertificateAuthority()
  const serving = createServingCertificate({
    ca,
    service: options.service,
    namespace: options.namespace,
    dnsNames: options.dnsNames,
    ipAddresses: options.ipAddresses,
    days: options.days,
  })
  await writeFilesAtomically([
    ...(existing ? [] : [
      { path: paths.caCert, contents: ca.certPem, mode: CERT_MODE },
      { path: paths.caKey, contents: ca.keyPem, mode: KEY_MODE },
    ]),
    // Key before certificate: a reader that catches the gap between the two renames sees a
    // mismatched pair, which ReloadingTlsContext rejects, and the second rename triggers a retry.
    { path: paths.tlsKey, contents: serving.keyPem, mode: KEY_MODE },
    { path: paths.tlsCert, contents: serving.certPem, mode: CERT_MODE },
  ])
  return { ...paths, reusedCa: existing !== undefined }
}

/**
 * The CA in ca.crt/ca.key when both exist and are usable; undefined when neither exists. Silently
 * replacing a CA breaks every webhook whose caBundle came from it, so anything in between is refused.
 */
async function readExistingCa(certFile: string, keyFile: string): Promise<PemPair | undefined> {
  const [certPem, keyPem] = await Promise.all([readIfExists(certFile), readIfExists(keyFile)])
  if (certPem === undefined && keyPem === undefined) return undefined
  const replace = 'remove both to create a new CA, or pass --new-ca (every caBundle made from the old CA must then be updated)'
  if (certPem === undefined || keyPem === undefined) {
    throw new ExistingCaError(`${certPem === undefined ? keyFile : certFile} exists without ${certPem === undefined ? certFile : keyFile}: ${replace}`)
  }
  let x509: X509Certificate
  try {
    x509 = new X509Certificate(certPem)
    if (!x509.checkPrivateKey(createPrivateKey(keyPem))) throw new Error('the CA certificate and key do not match')
  } catch (error) {
    throw new ExistingCaError(`cannot use the CA in ${certFile} and ${keyFile} (${error instanceof Error ? error.message : String(error)}): ${replace}`, { cause: error })
  }
  if (x509.validToDate.getTime() <= Date.now()) throw new ExistingCaError(`the CA in ${certFile} expired at ${x509.validToDate.toISOString()}: ${replace}`)
  return { certPem, keyPem }
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/**
 * For local runs without cert-manager: creates a localhost certificate (signed by the CA beside it,
 * ca.crt/ca.key, reused when usable, else a new one written there, so clients can trust it) unless both
 * files already exist. A lone certificate or key is replaced, since it is useless without its partner.
 */
export async function ensureDevCertificate(certFile: string, keyFile: string): Promise<{ created: boolean; caFile: string }> {
  const caFile = join(dirname(certFile), 'ca.crt')
  if ((await exists(certFile)) && (await exists(keyFile))) return { created: false, caFile }

  // The CA beside it is reused when usable (a browser or curl may trust it already); a development
  // certificate is no place to refuse, so an unusable one is replaced.
  const existing = await readExistingCa(caFile, join(dirname(certFile), 'ca.key')).catch(() => undefined)
  const ca = existing ?? createCertificateAuthority({ commonName: 'volsync-autorestore-dev-ca' })
  const serving = createServingCertificate({
    ca,
    service: 'volsync-autorestore',
    namespace: 'volsync-system',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
  })
  await writeFilesAtomically([
    ...(existing ? [] : [
      { path: caFile, contents: ca.certPem, mode: CERT_MODE },
      { path: join(dirname(certFile), 'ca.key'), contents: ca.keyPem, mode: KEY_MODE },
    ]),
    { path: keyFile, contents: serving.keyPem, mode: KEY_MODE },
    { path: certFile, contents: serving.certPem, mode: CERT_MODE },
  ])
  return { created: true, caFile }
}

// All temporaries are written and flushed before the first rename, keeping the window in which
// the set is inconsistent as small as the renames themselves.
async function writeFilesAtomically(files: readonly PendingFile[]): Promise<void> {
  const staged: { tmp: string; path: string }[] = []
  try {
    for (const file of files) {
      const dir = dirname(file.path)
      await mkdir(dir, { recursive: true })
      const tmp = join(dir, `.${basename(file.path)}.${randomBytes(6).toString('hex')}.tmp`)
      staged.push({ tmp, path: file.path })
      // 'wx' refuses to follow a planted symlink; chmod because the open mode is filtered by umask.
      const handle = await open(tmp, 'wx', file.mode)
      try {
        await handle.chmod(file.mode)
        await handle.writeFile(file.contents, 'utf8')
        await handle.sync()
      } finally {
        await handle.close()
      }
    }
    for (const { tmp, path } of staged) await rename(tmp, path)
  } catch (error) {
    await Promise.all(staged.map(({ tmp }) => rm(tmp, { force: true })))
    throw error
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path)
    return true
  } catch {
    return false
  }
}
