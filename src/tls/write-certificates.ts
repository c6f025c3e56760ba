// Puts generated certificates on disk. Every file is written to a temporary name in the same
// directory and renamed into place, so a watcher (ReloadingTlsContext) never reads half a file.
import { randomBytes } from 'node:crypto'
import { access, mkdir, open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { createCertificateAuthority, createServingCertificate } from './certificate-authority.ts'

export interface WriteCertificatesOptions {
  outDir: string
  service: string
  namespace: string
  dnsNames?: readonly string[]
  ipAddresses?: readonly string[]
  /** Serving certificate validity; the CA always gets 10 years. */
  days?: number
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
 * Creates a CA (10 years) and a serving certificate for `service`.`namespace` (`days`), and writes ca.crt,
 * ca.key, tls.key, tls.crt into `outDir` (created if needed): each to a temporary file renamed into place,
 * keys mode 0600, certificates 0644. Overwrites existing files; rejects on any file error, removing its
 * temporary files.
 */
export async function writeCertificates(options: WriteCertificatesOptions): Promise<CertificatePaths> {
  const paths: CertificatePaths = {
    caCert: join(options.outDir, 'ca.crt'),
    caKey: join(options.outDir, 'ca.key'),
    tlsCert: join(options.outDir, 'tls.crt'),
    tlsKey: join(options.outDir, 'tls.key'),
  }
  const ca = createCertificateAuthority()
  const serving = createServingCertificate({
    ca,
    service: options.service,
    namespace: options.namespace,
    dnsNames: options.dnsNames,
    ipAddresses: options.ipAddresses,
    days: options.days,
  })
  await writeFilesAtomically([
    { path: paths.caCert, contents: ca.certPem, mode: CERT_MODE },
    { path: paths.caKey, contents: ca.keyPem, mode: KEY_MODE },
    // Key before certificate: a reader that catches the gap between the two renames sees a
    // mismatched pair, which ReloadingTlsContext rejects, and the second rename triggers a retry.
    { path: paths.tlsKey, contents: serving.keyPem, mode: KEY_MODE },
    { path: paths.tlsCert, contents: serving.certPem, mode: CERT_MODE },
  ])
  return paths
}

/**
 * For local runs without cert-manager: creates a localhost certificate (and its CA beside it, so
 * clients can trust it) unless both files already exist. A lone certificate or key is replaced,
 * since it is useless without its partner.
 */
export async function ensureDevCertificate(certFile: string, keyFile: string): Promise<{ created: boolean; caFile: string }> {
  const caFile = join(dirname(certFile), 'ca.crt')
  if ((await exists(certFile)) && (await exists(keyFile))) return { created: false, caFile }

  const ca = createCertificateAuthority({ commonName: 'volsync-autorestore-dev-ca' })
  const serving = createServingCertificate({
    ca,
    service: 'volsync-autorestore',
    namespace: 'volsync-system',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
  })
  await writeFilesAtomically([
    { path: caFile, contents: ca.certPem, mode: CERT_MODE },
    { path: join(dirname(certFile), 'ca.key'), contents: ca.keyPem, mode: KEY_MODE },
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
