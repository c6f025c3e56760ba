// Issue 13, the running server's TLS: ECDHE with AEAD only on the webhook port (item 9, also after
// the reloading context re-applied its pair); an expired replacement copied over the files is
// refused while the good one keeps serving, and shows in /status and the metrics until a good
// pair is served (items 1, 6); a served certificate that has expired turns /readyz 503 (item 1).
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import tls from 'node:tls'
import t from 'tap'
import { createServingCertificate, describeCertificate, type PemPair } from '../../src/tls/certificate-authority.ts'
import {
  eventually, exampleConfigYaml, httpGet, makeCertificates, metricSample, NAMESPACE, portOf, SERVICE, SERVICE_DNS, startTestRuntime, tempDir,
  waitReady, WebhookClient, type TestCertificates,
} from '../support/live-webhook.ts'

const DAY = 24 * 3600 * 1000

async function caOf(certs: TestCertificates): Promise<PemPair> {
  return { certPem: certs.ca, keyPem: await readFile(certs.caKey, 'utf8') }
}

function issue(ca: PemPair, more: { now?: Date; days?: number } = {}): PemPair {
  return createServingCertificate({ ca, service: SERVICE, namespace: NAMESPACE, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], ...more })
}

/** Key first, then certificate, each renamed into place (as writeCertificates and kubelet do). */
async function install(certs: TestCertificates, pair: PemPair): Promise<void> {
  for (const [path, text] of [[certs.tlsKey, pair.keyPem], [certs.tlsCert, pair.certPem]] as const) {
    await writeFile(`${path}.tmp`, text)
    await rename(`${path}.tmp`, path)
  }
}

/** One TLS handshake with the given client offer; resolves with the negotiated cipher or the error code. */
function handshake(port: number, ca: string, options: tls.ConnectionOptions): Promise<{ cipher?: string; version?: string; error?: string; fingerprint256?: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: SERVICE_DNS, ca, ...options }, () => {
      resolve({ cipher: socket.getCipher().name, version: socket.getProtocol() ?? '', fingerprint256: socket.getPeerCertificate().fingerprint256 })
      socket.end()
    })
    socket.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }))
  })
}

t.test('TLS 1.2 offers ECDHE with AEAD only; TLS 1.3 as is', async (t) => {
  const certs = await makeCertificates(await tempDir(t, 'ciphers'))
  const runtime = await startTestRuntime(t, { yaml: await exampleConfigYaml({ certs }) })
  const port = portOf(runtime.webhookUrl)
  const tls12 = { maxVersion: 'TLSv1.2' as const }
  for (const cipher of ['AES128-GCM-SHA256', 'AES256-SHA256', 'AES128-SHA', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA384']) {
    const result = await handshake(port, certs.ca, { ...tls12, ciphers: cipher })
    t.ok(result.error, `${cipher} (static RSA or CBC) is refused: ${result.error ?? result.cipher}`)
  }
  for (const cipher of ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305']) {
    t.match(await handshake(port, certs.ca, { ...tls12, ciphers: cipher }), { cipher, version: 'TLSv1.2' }, `${cipher} is accepted`)
  }
  t.match(await handshake(port, certs.ca, {}), { version: 'TLSv1.3', cipher: /^TLS_AES_/ }, 'TLS 1.3 by default')
  t.match(await handshake(port, certs.ca, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }), { error: /./ }, 'TLS 1.1 refused')

  // A certificate reload rebuilds the context: the same rules must hold after it.
  await install(certs, issue(await caOf(certs)))
  await eventually('the reload', async () => (runtime.tls.reloads === 1 ? true : undefined))
  t.ok((await handshake(port, certs.ca, { ...tls12, ciphers: 'AES128-GCM-SHA256' })).error, 'static RSA still refused after a reload')
  t.match(await handshake(port, certs.ca, { ...tls12, ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }), { version: 'TLSv1.2' })
})

t.test('an expired pair copied over the files is refused; the good one serves; /status and metrics say so until a good pair comes', async (t) => {
  const certs = await makeCertificates(await tempDir(t, 'expired-swap'))
  const runtime = await startTestRuntime(t, { yaml: await exampleConfigYaml({ certs }) })
  const client = new WebhookClient(runtime.webhookUrl, { ca: certs.ca, keepAlive: false })
  t.teardown(() => client.close())
  await waitReady(client)
  const goodFingerprint = describeCertificate(await readFile(certs.tlsCert, 'utf8')).fingerprint256
  const scrape = async () => (await httpGet(`${runtime.metricsUrl}/metrics`)).text
  const status = async () => JSON.parse((await httpGet(`${runtime.metricsUrl}/status`)).text) as {
    summary: { ready: boolean; warnings: string[] }; tls: { failures: number; lastReloadError: string | null; certificate: { notAfter: string } | null }
  }
  const notAfter = describeCertificate(await readFile(certs.tlsCert, 'utf8')).notAfter
  t.equal(metricSample(await scrape(), 'volsync_autorestore_tls_certificate_not_after_seconds'), notAfter.getTime() / 1000, 'the served expiry as a gauge')
  t.equal((await status()).tls.certificate?.notAfter, notAfter.toISOString())

  const ca = await caOf(certs)
  await install(certs, issue(ca, { now: new Date(Date.now() - 400 * DAY), days: 365 }))
  // Between the two renames a mismatched pair may be seen (and refused) first: wait for the expired one.
  await eventually('the refusal', async () => (/expired/.test(runtime.tls.state().lastReloadError ?? '') ? true : undefined))
  const fresh = await handshake(portOf(runtime.webhookUrl), certs.ca, {})
  t.equal(fresh.fingerprint256, goodFingerprint, 'a new connection still gets the good certificate')
  t.equal((await client.request('GET', '/readyz')).status, 200, 'still ready: the served certificate is good')
  t.equal(metricSample(await scrape(), 'volsync_autorestore_tls_last_reload_success'), 0)
  const refused = await status()
  t.match(refused.tls.lastReloadError, /^certificate expired at /)
  t.match(refused.summary.warnings, [/^tls: refused a new certificate \(still serving the previous one\): certificate expired at/])

  const replacement = issue(ca)
  await install(certs, replacement)
  await eventually('the good pair to be served', async () => (runtime.tls.reloads === 1 ? true : undefined))
  t.equal(metricSample(await scrape(), 'volsync_autorestore_tls_last_reload_success'), 1)
  const cleared = await status()
  t.equal(cleared.tls.lastReloadError, null, 'the refusal no longer shows')
  t.strictSame(cleared.summary.warnings.filter((w) => /tls|TLS/.test(w)), [], 'nor any TLS warning')
  t.equal(cleared.tls.failures, 1)
})

t.test('a served certificate that has expired: /readyz 503 with the reason, ready again once a good pair is served', async (t) => {
  const certs = await makeCertificates(await tempDir(t, 'expired-served'))
  const ca = await caOf(certs)
  await install(certs, issue(ca, { now: new Date(Date.now() - 400 * DAY), days: 365 }))
  const runtime = await startTestRuntime(t, { yaml: await exampleConfigYaml({ certs }) })
  // The client cannot verify an expired certificate, as the API server could not: look without verifying.
  const unverified = (path: string) => new Promise<{ status: number; text: string }>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: portOf(runtime.webhookUrl), rejectUnauthorized: false }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
    })
    let text = ''
    socket.on('data', (chunk: Buffer) => { text += chunk.toString('utf8') })
    socket.on('end', () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0), text }))
    socket.on('error', reject)
  })
  const readyz = await eventually('readyz to name the certificate', async () => {
    const answer = await unverified('/readyz')
    return /tls: the served certificate expired at/.test(answer.text) ? answer : undefined
  })
  t.equal(readyz.status, 503)
  const doc = JSON.parse((await httpGet(`${runtime.metricsUrl}/status`)).text) as { summary: { ready: boolean; pending: string[] } }
  t.equal(doc.summary.ready, false)
  t.match(doc.summary.pending.filter((p) => p.startsWith('tls')), [/^tls: the served certificate expired at/])

  await install(certs, issue(ca))
  const client = new WebhookClient(runtime.webhookUrl, { ca: certs.ca, keepAlive: false })
  t.teardown(() => client.close())
  const ready = await eventually('ready after the good pair', async () => {
    const answer = await client.request('GET', '/readyz').catch(() => undefined)
    return answer?.status === 200 ? answer : undefined
  })
  t.equal(ready.text, 'ready\n')
})
