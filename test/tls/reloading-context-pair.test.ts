// ReloadingTlsContext holding a pair in memory (self-managed TLS): applyPair() swaps the served
// certificate with the same validation as a file reload.
import { X509Certificate } from 'node:crypto'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { writeFileSync } from 'node:fs'
import type { TLSSocket } from 'node:tls'
import t from 'tap'
import { createCertificateAuthority, createServingCertificate, type PemPair } from '../../src/tls/certificate-authority.ts'
import { ReloadingTlsContext, type TlsPair, type TlsReloadEvent } from '../../src/tls/reloading-context.ts'

const SERVICE = { service: 'volsync-autorestore', namespace: 'volsync-system', ipAddresses: ['127.0.0.1'] }
const ca = createCertificateAuthority({ commonName: 'ca-pair-test' })
const first = createServingCertificate({ ca, ...SERVICE })
const second = createServingCertificate({ ca, ...SERVICE })
const pair = (p: PemPair): TlsPair => ({ cert: p.certPem, key: p.keyPem })
const fingerprint = (p: PemPair): string => new X509Certificate(p.certPem).fingerprint256

function served(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/', ca: ca.certPem, agent: false }, (res) => {
      resolve((res.socket as TLSSocket).getPeerCertificate().fingerprint256)
      res.resume()
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('applyPair swaps the certificate for new connections; bad pairs are refused', async (t) => {
  const events: TlsReloadEvent[] = []
  const ctx = new ReloadingTlsContext({ pair: pair(first), onReload: (e) => events.push(e) })
  t.teardown(() => ctx.close())
  const server = https.createServer({ ...ctx.current() }, (_req, res) => res.end('ok'))
  ctx.applyTo(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  }))
  const port = (server.address() as AddressInfo).port
  t.equal(await served(port), fingerprint(first))

  t.equal(ctx.applyPair(pair(second)), 'reloaded')
  t.equal(await served(port), fingerprint(second))
  t.equal(ctx.current().cert, second.certPem)
  t.equal(ctx.applyPair(pair(second)), 'unchanged')

  t.equal(ctx.applyPair({ cert: first.certPem, key: second.keyPem }), 'rejected', 'mismatched certificate and key')
  t.equal(ctx.applyPair({ cert: 'garbage', key: second.keyPem }), 'rejected')
  t.equal(await served(port), fingerprint(second), 'still the last good pair')
  t.equal(ctx.checkNow(), 'unchanged', 'no files to re-read')
  t.match(events, [{ ok: true, reloads: 1 }, { ok: false, failures: 1 }, { ok: false, failures: 2 }])
})

t.test('the initial pair must be valid; a file-backed context refuses applyPair', async (t) => {
  t.throws(() => new ReloadingTlsContext({ pair: { cert: first.certPem, key: second.keyPem } }), /in memory.*do not match/)
  const dir = t.testdir()
  writeFileSync(join(dir, 'tls.crt'), first.certPem)
  writeFileSync(join(dir, 'tls.key'), first.keyPem)
  const ctx = new ReloadingTlsContext({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), watch: false, pollIntervalMs: 0 })
  t.teardown(() => ctx.close())
  t.throws(() => ctx.applyPair(pair(second)), /created with `pair`/)
})
