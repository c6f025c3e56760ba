// `certs [--out DIR] [--service NAME] [--namespace NS] [--dns NAME ...] [--ip IP ...] [--days N] [--new-ca]`
import { isIP } from 'node:net'
import { parseArgs } from 'node:util'
import { ExistingCaError, writeCertificates } from '../tls/write-certificates.ts'
import { EXIT_OK, UsageError } from './usage-error.ts'

/**
 * `certs`: validates the options (UsageError for `--days` outside 1-3650, a bad DNS name or a bad `--ip`), writes
 * tls.crt and tls.key into `--out` signed by the CA already there (ca.crt/ca.key kept), or by a new CA written
 * beside them when there is none or with `--new-ca` (writeCertificates), and prints what it wrote to `out`.
 * UsageError when the CA there is half present, mismatched or expired (without `--new-ca`); rejects on a file error.
 */
export async function certsCommand(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string', default: 'certs' },
      service: { type: 'string', default: 'volsync-autorestore' },
      namespace: { type: 'string', default: 'volsync-system' },
      dns: { type: 'string', multiple: true, default: [] },
      ip: { type: 'string', multiple: true, default: [] },
      days: { type: 'string', default: '365' },
      'new-ca': { type: 'boolean', default: false },
    },
  })
  const days = Number(values.days)
  if (!Number.isInteger(days) || days < 1 || days > 3650) throw new UsageError('--days: must be a whole number of days between 1 and 3650')
  const dnsName = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/
  for (const name of [values.service, values.namespace]) {
    if (!dnsName.test(name)) throw new UsageError(`--service/--namespace: ${JSON.stringify(name)} is not a DNS label`)
  }
  for (const name of values.dns) {
    if (!/^(\*\.)?[a-zA-Z0-9.-]+$/.test(name)) throw new UsageError(`--dns: ${JSON.stringify(name)} is not a DNS name`)
  }
  for (const ip of values.ip) {
    // A zone (fe80::1%eth0) has no meaning in a certificate's IP SAN.
    if (isIP(ip) === 0 || ip.includes('%')) throw new UsageError(`--ip: ${JSON.stringify(ip)} is not an IPv4 or IPv6 address`)
  }
  // An existing CA is reused (as cert-manager keeps its issuer's): the caBundle already in the webhook
  // configurations stays valid. Only --new-ca replaces it.
  const paths = await writeCertificates({ outDir: values.out, service: values.service, namespace: values.namespace, dnsNames: values.dns, ipAddresses: values.ip, days, newCa: values['new-ca'] })
    .catch((error: unknown) => {
      throw error instanceof ExistingCaError ? new UsageError(error.message) : error
    })
  if (paths.reusedCa) {
    out.write(`wrote ${paths.tlsCert}, ${paths.tlsKey}, signed by the existing CA in ${paths.caCert} (kept; --new-ca replaces it)\n`)
    out.write(`the caBundle made from ${paths.caCert} stays valid\n`)
  } else {
    out.write(`wrote ${paths.caCert}, ${paths.caKey}, ${paths.tlsCert}, ${paths.tlsKey}\n`)
    out.write(`caBundle for the webhook configurations: base64 -w0 ${paths.caCert}\n`)
  }
  return EXIT_OK
}
