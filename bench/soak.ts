// Soak (issue 13): one real `serve` process on loopback, in one go: 50 keep-alive clients sending
// reviews throughout; 30 hostile bodies (2 MB nested 10^6 deep); 200 slow clients (bare TCP, TLS idle,
// trickled headers, trickled body); a certificate swap; then SIGTERM with 10 idle/trickling TLS
// clients open, while a probe polls /readyz and the load stops 1 s after the first 503 (the endpoints
// update). Prints requests failed, p99 of legitimate reviews, descriptors before/after (from
// /proc/<pid>/fd) and time to exit. Bounded: about a minute; the server is killed after 2 minutes.
//
//   node_modules/.bin/node bench/soak.ts      (npm run soak)
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import tls from 'node:tls'
import { createCertificateAuthority, createServingCertificate, type PemPair } from '../src/tls/certificate-authority.ts'
import { exampleConfigYaml, exampleText, NAMESPACE, SERVICE, SERVICE_DNS } from '../test/support/live-webhook.ts'
import { descriptorCount, KeepAliveLoad, openSlowClients, percentile, sigtermUnderLoad, spawnServe } from '../test/support/shutdown-trial.ts'

const CLIENTS = 50
const HOSTILE = 30
const SLOW = 200
const SLOW_AT_SIGTERM = 10

const dir = await mkdtemp(join(tmpdir(), 'vsar-soak-'))
const ca = createCertificateAuthority()
const serving = (): PemPair => createServingCertificate({ ca, service: SERVICE, namespace: NAMESPACE, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] })
const paths = { caCert: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'), tlsCert: join(dir, 'tls.crt'), tlsKey: join(dir, 'tls.key') }

/** Key then certificate, each renamed into place, as a Secret volume update or cert-manager does. */
async function installPair(pair: PemPair): Promise<void> {
  await writeFile(`${paths.tlsKey}.tmp`, pair.keyPem, { mode: 0o600 })
  await rename(`${paths.tlsKey}.tmp`, paths.tlsKey)
  await writeFile(`${paths.tlsCert}.tmp`, pair.certPem)
  await rename(`${paths.tlsCert}.tmp`, paths.tlsCert)
}

function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: SERVICE_DNS, ca: ca.certPem }, () => {
      resolve(socket.getPeerCertificate().fingerprint256)
      socket.destroy()
    })
    socket.once('error', reject)
  })
}

/** POSTs `body` on a fresh connection; the status and first line of the answer. */
function postOnce(url: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    const req = https.request(`${url}/mutate`, { method: 'POST', ca: ca.certPem, servername: SERVICE_DNS, agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { if (text.length < 200) text += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: text.split('\n')[0] ?? '' }))
    })
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ status: 0, text: error.code ?? error.message }))
    req.end(body)
  })
}

function readyz(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    https.get(`${url}/readyz`, { ca: ca.certPem, servername: SERVICE_DNS, agent: false }, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    }).on('error', () => resolve(false))
  })
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<number> {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`soak: timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(50)
  }
  return Date.now() - started
}

const fmt = (ms: number) => `${ms.toFixed(1)} ms`

try {
  await installPair(serving())
  await writeFile(paths.caCert, ca.certPem)
  const configFile = join(dir, 'config.yaml')
  // Shutdown keys at their defaults (drainPeriod 5s, timeout 25s); info logs name the ports.
  await writeFile(configFile, await exampleConfigYaml({ certs: paths, overrides: { log: { level: 'info' } } }))
  const server = await spawnServe(configFile, 120_000)
  const port = Number(new URL(server.webhookUrl).port)
  let ready = false
  const readyStarted = Date.now()
  while (!ready) {
    if (Date.now() - readyStarted > 30_000) throw new Error('soak: /readyz not 200 after 30 s')
    ready = await readyz(server.webhookUrl)
    if (!ready) await sleep(100)
  }
  const descriptorsIdle = descriptorCount(server.pid)

  const review = await exampleText('pvc-restore')
  const load = new KeepAliveLoad(server.webhookUrl, ca.certPem, '/mutate', review, CLIENTS)
  await until('1,000 reviews answered', () => load.result.ok >= 1000, 30_000)
  const baselineCount = load.result.latenciesMs.length
  await sleep(2000)
  const baseline = load.result.latenciesMs.slice(baselineCount)
  const descriptorsBefore = descriptorCount(server.pid)

  // The hostile phase: slow clients, hostile bodies and a certificate swap at once, load running.
  const hostileFrom = load.result.latenciesMs.length
  const slow = await openSlowClients(port, ca.certPem, SLOW, ['tcp', 'tls-idle', 'tls-headers', 'tls-body'])
  const descriptorsWithSlow = descriptorCount(server.pid)
  const deep = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}}`
  const hostile = Promise.all(Array.from({ length: HOSTILE }, () => postOnce(server.webhookUrl, deep)))
  const oldFingerprint = await servedFingerprint(port)
  const swappedAt = Date.now()
  await installPair(serving())
  let newFingerprint = await servedFingerprint(port)
  for (let i = 0; i < 100 && newFingerprint === oldFingerprint; i++) {
    await sleep(100)
    newFingerprint = await servedFingerprint(port)
  }
  const swapMs = Date.now() - swappedAt
  const hostileAnswers = await hostile
  const slowClosedMs = await until('every slow client closed by the server', () => slow.closedCount() === SLOW, 40_000)
  const duringHostile = load.result.latenciesMs.slice(hostileFrom)
  const descriptorsAfter = descriptorCount(server.pid)

  // SIGTERM with idle and trickling TLS clients open.
  const lingering = await openSlowClients(port, ca.certPem, SLOW_AT_SIGTERM, ['tls-idle', 'tls-headers'])
  const { sigtermAt, notReadyAt, result, exit } = await sigtermUnderLoad(server, load, ca.certPem)
  lingering.destroy()
  slow.destroy()

  const failed = Object.values(result.failures).reduce((a, b) => a + b, 0)
  const hostile400 = hostileAnswers.filter((a) => a.status === 400).length
  const rows: [string, string, string][] = [
    ['legitimate reviews answered', String(result.ok), ''],
    ['requests failed', `${failed}${failed > 0 ? ` ${JSON.stringify(result.failures)}` : ''}`, 'goal 0'],
    ['p99 legitimate review, load alone', fmt(percentile(baseline, 99)), `${baseline.length} reviews`],
    ['p99 legitimate review, hostile phase', fmt(percentile(duringHostile, 99)), `${duringHostile.length} reviews; goal well under the API server's 10 s`],
    ['hostile bodies answered 400', `${hostile400}/${HOSTILE}`, hostileAnswers[0]?.text ?? ''],
    ['certificate swap', newFingerprint !== oldFingerprint ? 'new certificate served' : 'NOT SWAPPED', `seen on a new connection ${swapMs} ms after the rename`],
    ['slow clients closed by the server', `${slow.closedCount()}/${SLOW}`, `within ${(slowClosedMs / 1000).toFixed(1)} s of opening`],
    ['descriptors idle / under load / +200 slow / after', `${descriptorsIdle} / ${descriptorsBefore} / ${descriptorsWithSlow} / ${descriptorsAfter}`, '/proc/<pid>/fd'],
    ['answered after SIGTERM (drain)', `${result.okAfterMark}`, `${result.connectionClose} with Connection: close`],
    ['/readyz 503 after SIGTERM', `${notReadyAt - sigtermAt} ms`, 'probe every 100 ms'],
    ['time to exit after SIGTERM', `${((exit.at - sigtermAt) / 1000).toFixed(1)} s`, `exit ${exit.code ?? exit.signal}; ${SLOW_AT_SIGTERM} idle/trickling TLS clients open; goal < 25 s (server.shutdown.timeout)`],
  ]
  const width = Math.max(...rows.map((r) => r[0].length))
  const valueWidth = Math.max(...rows.map((r) => r[1].length))
  for (const [name, value, note] of rows) console.log(`${name.padEnd(width)}  ${value.padEnd(valueWidth)}  ${note}`)
  if (failed > 0 || exit.code !== 0) process.exitCode = 1
} finally {
  await rm(dir, { recursive: true, force: true })
}
