// Self-managed TLS against the fake API server, through the real client-node. Renewal decisions
// read an injected clock; certificates are checked with node:crypto's X509Certificate.
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import t from 'tap'
import { CertRotation, type SelfManagedTlsOptions } from '../../src/controllers/cert-rotation.ts'
import { LeaderLease } from '../../src/controllers/leader-lease.ts'
import { defaultConfig } from '../../src/config/load.ts'
import { silentLog } from '../../src/log.ts'
import { tlsSource } from '../../src/server/tls-source.ts'
import { createCertificateAuthority, createServingCertificate } from '../../src/tls/certificate-authority.ts'
import { ReloadingTlsContext, type TlsPair } from '../../src/tls/reloading-context.ts'
import { FakeKubeApi, field, type JsonObject } from '../support/fake-kube-api.ts'

/** An HTTPS server on loopback whose certificate follows `context`; closed at teardown. Returns its port. */
async function serveWith(t: { teardown(fn: () => unknown): void }, context: ReloadingTlsContext): Promise<number> {
  const server = https.createServer({ ...context.current() }, (_req, res) => res.end('ok'))
  context.applyTo(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  }))
  return (server.address() as AddressInfo).port
}

type Test = Parameters<NonNullable<Parameters<typeof t.test>[0]>>[0]

const NS = 'volsync-system'
const SECRET = 'volsync-autorestore-tls'
const SERVICE = 'volsync-autorestore'
const SECRET_PATH = `/api/v1/namespaces/${NS}/secrets/${SECRET}`
const MINUTE = 60_000
const DAY = 24 * 60 * MINUTE

class ManualClock {
  ms = Date.parse('2025-06-01T12:00:00Z')
  /** Runs once, at the next reading of the clock (which CertRotation takes right after reading the Secret). */
  onNextRead: (() => void) | undefined
  readonly now = (): number => {
    const hook = this.onNextRead
    this.onNextRead = undefined
    hook?.()
    return this.ms
  }
  advance(ms: number): void {
    this.ms += ms
  }
}

interface Harness {
  fake: FakeKubeApi
  clock: ManualClock
  rotation(extra?: Partial<SelfManagedTlsOptions>): { rotation: CertRotation; pairs: TlsPair[] }
  secret(): JsonObject | undefined
  /** A data key of the Secret, decoded. */
  text(key: string): string
  caBundles(): unknown[]
  writes(): { method: string; path: string; status: number | undefined }[]
}

function webhook(name: string, caBundle?: string): JsonObject {
  return { name, admissionReviewVersions: ['v1'], sideEffects: 'NoneOnDryRun', clientConfig: { service: { name: SERVICE, namespace: NS, path: '/mutate' }, ...(caBundle ? { caBundle } : {}) } }
}

async function harness(t: Test): Promise<Harness> {
  const fake = await FakeKubeApi.start()
  fake.seed(
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } },
    { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: SERVICE }, webhooks: [webhook('pvc.volsync-autorestore.io'), webhook('jobs.volsync-autorestore.io')] },
    { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: SERVICE }, webhooks: [webhook('validate.volsync-autorestore.io', 'c3RhbGU=')] },
  )
  const clock = new ManualClock()
  const rotations: CertRotation[] = []
  t.teardown(async () => {
    await Promise.all(rotations.map((r) => r.stop()))
    await fake.close()
  })
  const secret = (): JsonObject | undefined => fake.get('secrets', NS, SECRET)
  return {
    fake,
    clock,
    rotation(extra = {}) {
      const pairs: TlsPair[] = []
      const rotation = new CertRotation({
        api: fake.kubeConfig(),
        namespace: NS,
        secretName: SECRET,
        service: SERVICE,
        dnsNames: ['localhost'],
        ipAddresses: ['127.0.0.1'],
        mutatingWebhookConfigurations: [SERVICE],
        validatingWebhookConfigurations: [SERVICE],
        onCertificate: (pair) => pairs.push(pair),
        now: clock.now,
        ...extra,
      })
      rotations.push(rotation)
      return { rotation, pairs }
    },
    secret,
    // Not field(): the keys contain dots.
    text: (key) => Buffer.from(String((field(secret(), 'data') as JsonObject | undefined)?.[key] ?? ''), 'base64').toString('utf8'),
    caBundles: () =>
      [...fake.list('mutatingwebhookconfigurations'), ...fake.list('validatingwebhookconfigurations')].flatMap((c) => (c.webhooks as JsonObject[]).map((w) => field(w, 'clientConfig.caBundle'))),
    writes: () => fake.requests.filter((r) => r.method !== 'GET').map((r) => ({ method: r.method, path: r.path, status: r.status })),
  }
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64')
const validTo = (x509: X509Certificate): number => new Date(x509.validTo).getTime()

/** Fingerprint of the certificate a fresh TLS connection is served, verified against `ca` for the Service name. */
function servedFingerprint(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/', ca, servername: `${SERVICE}.${NS}.svc`, agent: false }, (res) => {
      resolve((res.socket as TLSSocket).getPeerCertificate().fingerprint256)
      res.resume()
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('creates the Secret and writes the CA bundle into every webhook; a second pass writes nothing', async (t) => {
  const h = await harness(t)
  const lines: string[] = []
  const record = (obj: object, msg: string): void => void lines.push(`${msg} ${JSON.stringify(obj)}`)
  const { rotation, pairs } = h.rotation({ log: { debug: record, info: record, warn: record, error: record } })
  const result = await rotation.reconcile()
  t.same(result.reasons, ['no CA', 'no serving certificate'])
  t.same(result.patched, [`mutatingwebhookconfigurations/${SERVICE}`, `validatingwebhookconfigurations/${SERVICE}`])

  t.match(h.secret(), { type: 'kubernetes.io/tls', metadata: { labels: { 'app.kubernetes.io/managed-by': 'volsync-autorestore' } } })
  t.same(Object.keys(field(h.secret(), 'data') as object).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'])
  const ca = new X509Certificate(h.text('ca.crt'))
  const cert = new X509Certificate(h.text('tls.crt'))
  t.ok(ca.ca, 'the CA is a CA')
  t.match(ca.subject, /^CN=volsync-autorestore-ca@\d+$/)
  t.ok(ca.checkPrivateKey(createPrivateKey(h.text('ca.key'))))
  t.notOk(cert.ca)
  t.equal(cert.issuer, ca.subject)
  t.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), 'signed by the CA')
  t.ok(cert.checkPrivateKey(createPrivateKey(h.text('tls.key'))))
  t.equal(cert.subject, `CN=${SERVICE}.${NS}.svc`)
  t.equal(cert.subjectAltName, `DNS:${SERVICE}, DNS:${SERVICE}.${NS}, DNS:${SERVICE}.${NS}.svc, DNS:${SERVICE}.${NS}.svc.cluster.local, DNS:localhost, IP Address:127.0.0.1`)
  t.ok(new Date(cert.validFrom).getTime() <= h.clock.ms, 'valid from now (backdated for skew)')
  t.ok(Math.abs(validTo(cert) - (h.clock.ms + 365 * DAY)) < 1000, 'valid for a year')
  t.ok(Math.abs(validTo(ca) - (h.clock.ms + 3650 * DAY)) < 1000, 'the CA for ten years')

  t.same(h.caBundles(), [b64(h.text('ca.crt')), b64(h.text('ca.crt')), b64(h.text('ca.crt'))], 'every webhook trusts the CA, the stale bundle replaced')
  t.same(pairs, [{ cert: h.text('tls.crt'), key: h.text('tls.key') }])
  t.same(await rotation.firstCertificate(), pairs[0])

  h.fake.clearRequests()
  const again = await rotation.reconcile()
  t.same(again, { reasons: [], patched: [], missing: [] })
  t.same(h.writes(), [], 'nothing written when all is current')
  t.equal(pairs.length, 1, 'no new certificate for the server')
  t.match(lines.join('\n'), /wrote the TLS Secret/)
  t.notMatch(lines.join('\n'), /BEGIN|PRIVATE/, 'no key or certificate material in the logs')
})

t.test('two replicas creating at once end with one Secret and serve the same pair', async (t) => {
  const h = await harness(t)
  const a = h.rotation()
  const b = h.rotation()
  await Promise.all([a.rotation.reconcile(), b.rotation.reconcile()])
  const created = h.writes().filter((w) => w.method === 'POST' && w.status === 201)
  t.equal(created.length, 1, 'one create won; the other re-read (409) or found it')
  t.same(a.pairs, [{ cert: h.text('tls.crt'), key: h.text('tls.key') }])
  t.same(b.pairs, a.pairs)
})

t.test('a second replica reuses the CA and certificate; followers read them, also once created later', async (t) => {
  const h = await harness(t)
  const follower = h.rotation({ checkIntervalMs: 5 })
  await follower.rotation.start()
  t.equal(follower.rotation.current(), undefined, 'nothing to serve before the leader creates the Secret')

  const first = h.rotation()
  await first.rotation.reconcile()
  const rv = field(h.secret(), 'metadata.resourceVersion')
  const second = h.rotation()
  t.same((await second.rotation.reconcile()).reasons, [])
  t.equal(field(h.secret(), 'metadata.resourceVersion'), rv, 'the Secret was not rewritten')
  t.same(second.pairs, first.pairs, 'the same CA and certificate')

  await h.fake.waitFor(() => follower.pairs.length === 1)
  t.same(follower.pairs, first.pairs, 'the follower picked up the new Secret')
  t.same(await follower.rotation.firstCertificate(), first.pairs[0])
})

t.test('renewal: a new serving certificate from the same CA, no caBundle patch, served without restart', async (t) => {
  const h = await harness(t)
  // Real TLS handshakes check validity against the real clock: start 44 minutes back, so the first
  // certificate (60 min) and its renewal 45 minutes later are both valid right now.
  h.clock.ms = Date.now() - 44 * MINUTE
  let context: ReloadingTlsContext | undefined
  const { rotation, pairs } = h.rotation({ certValidityMs: 60 * MINUTE, onCertificate: (pair) => (pairs.push(pair), context?.applyPair(pair)) })
  await rotation.reconcile()
  const follower = h.rotation({ checkIntervalMs: 5 })
  await follower.rotation.start()
  const caPem = h.text('ca.crt')
  const caKey = h.text('ca.key')
  const before = new X509Certificate(h.text('tls.crt'))

  context = new ReloadingTlsContext({ pair: pairs[0]! })
  t.teardown(() => context?.close())
  const port = await serveWith(t, context)
  t.equal(await servedFingerprint(port, caPem), before.fingerprint256)

  h.clock.advance(30 * MINUTE)
  t.same((await rotation.reconcile()).reasons, [], 'not due with half its life left')
  h.clock.advance(15 * MINUTE)
  h.fake.clearRequests()
  const result = await rotation.reconcile()
  t.same(result.reasons, ['the serving certificate is due for renewal'])
  t.same(result.patched, [])
  t.same(h.writes(), [{ method: 'PUT', path: SECRET_PATH, status: 200 }], 'only the Secret written: the bundle is unchanged')

  const after = new X509Certificate(h.text('tls.crt'))
  const ca = new X509Certificate(caPem)
  t.not(after.serialNumber, before.serialNumber, 'a new certificate')
  t.ok(after.verify(ca.publicKey) && after.checkIssued(ca), 'signed by the same CA')
  t.equal(h.text('ca.crt'), caPem, 'the CA kept')
  t.equal(h.text('ca.key'), caKey)
  t.ok(Math.abs(validTo(after) - (h.clock.ms + 60 * MINUTE)) < 1000, 'valid for its full lifetime from now')
  t.equal(pairs.length, 2)
  t.equal(pairs[1]!.cert, h.text('tls.crt'))
  t.equal(await servedFingerprint(port, caPem), after.fingerprint256, 'the server serves the renewed certificate')
  await h.fake.waitFor(() => follower.rotation.current()?.cert === pairs[1]!.cert)
  t.pass('the follower picked up the renewal')
})

t.test('a 409 on the Secret (injected, or a real concurrent write) is re-read and retried', async (t) => {
  const h = await harness(t)
  const { rotation, pairs } = h.rotation({ certValidityMs: 60 * MINUTE })
  h.fake.injectFailure({ method: 'POST', path: `/api/v1/namespaces/${NS}/secrets`, code: 409, reason: 'AlreadyExists' })
  await rotation.reconcile()
  t.same(h.writes().filter((w) => w.path.includes('/secrets')).map((w) => `${w.method} ${w.status}`), ['POST 409', 'POST 201'])

  h.clock.advance(45 * MINUTE)
  h.fake.clearRequests()
  h.fake.injectFailure({ method: 'PUT', path: SECRET_PATH, code: 409, reason: 'Conflict' })
  t.same((await rotation.reconcile()).reasons, ['the serving certificate is due for renewal'])
  t.same(h.fake.requests.filter((r) => r.path === SECRET_PATH).map((r) => `${r.method} ${r.status}`), ['GET 200', 'PUT 409', 'GET 200', 'PUT 200'])

  // Someone else renews the certificate between our read and our write: our write gets 409, and
  // the re-read finds a fresh certificate, which is kept rather than replaced.
  h.clock.advance(45 * MINUTE)
  const theirs = createServingCertificate({ ca: { certPem: h.text('ca.crt'), keyPem: h.text('ca.key') }, service: SERVICE, namespace: NS, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 1 / 24, now: new Date(h.clock.ms) })
  h.clock.onNextRead = () => {
    const current = h.secret()!
    h.fake.seed({ ...current, data: { ...(current.data as JsonObject), 'tls.crt': b64(theirs.certPem), 'tls.key': b64(theirs.keyPem) } })
  }
  h.fake.clearRequests()
  t.same((await rotation.reconcile()).reasons, [], 'nothing left to do after the re-read')
  t.same(h.fake.requests.filter((r) => r.path === SECRET_PATH).map((r) => `${r.method} ${r.status}`), ['GET 200', 'PUT 409', 'GET 200'])
  t.equal(h.text('tls.crt'), theirs.certPem)
  t.equal(pairs.at(-1)?.cert, theirs.certPem, 'their certificate is served')

  // Conflicts that never end fail the pass (bounded retries); the next pass gets through.
  h.clock.advance(45 * MINUTE)
  h.fake.injectFailure({ method: 'PUT', path: SECRET_PATH, code: 409, reason: 'Conflict', times: 6 })
  await t.rejects(rotation.reconcile(), { code: 409 })
  t.same((await rotation.reconcile()).reasons, ['the serving certificate is due for renewal'])
})

t.test('CA renewal: old and new CA trusted together; the serving certificate moves to the new CA a pass later', async (t) => {
  const h = await harness(t)
  const { rotation } = h.rotation({ caValidityMs: 30 * DAY, certValidityMs: 25 * DAY })
  await rotation.reconcile()
  const oldCa = h.text('ca.crt')
  const firstCert = h.text('tls.crt')

  h.clock.advance(21 * DAY)
  const renewal = await rotation.reconcile()
  t.same(renewal.reasons, ['the CA is due for renewal'], 'the due serving certificate waits for the next pass')
  const bundle = h.text('ca.crt')
  t.ok(bundle.endsWith(oldCa.replaceAll('\r\n', '\n')), 'the old CA stays in the bundle, after the new one')
  const newCa = new X509Certificate(bundle)
  t.not(newCa.fingerprint256, new X509Certificate(oldCa).fingerprint256)
  t.ok(newCa.checkPrivateKey(createPrivateKey(h.text('ca.key'))), 'ca.key is the new CA key')
  t.equal(h.text('tls.crt'), firstCert)
  t.same(h.caBundles(), [b64(bundle), b64(bundle), b64(bundle)], 'every webhook trusts both CAs')

  const next = await rotation.reconcile()
  t.same(next.reasons, ['the serving certificate is due for renewal'])
  t.same(next.patched, [])
  const cert = new X509Certificate(h.text('tls.crt'))
  t.ok(cert.checkIssued(newCa) && cert.verify(newCa.publicKey), 'issued by the new CA')

  h.clock.advance(10 * DAY)
  const expired = await rotation.reconcile()
  t.same(expired.reasons, ['expired or unreadable CAs dropped from the trust bundle'])
  t.equal(new X509Certificate(h.text('ca.crt')).fingerprint256, newCa.fingerprint256)
  t.equal(h.text('ca.crt').match(/BEGIN CERTIFICATE/g)?.length, 1, 'only the new CA left')
  t.same(h.caBundles(), [b64(h.text('ca.crt')), b64(h.text('ca.crt')), b64(h.text('ca.crt'))])
})

t.test('damaged Secret: a bad serving certificate is reissued from the kept CA; missing webhook configurations are reported', async (t) => {
  const h = await harness(t)
  const { rotation } = h.rotation({ mutatingWebhookConfigurations: [SERVICE, 'not-installed'] })
  await rotation.reconcile()
  const caPem = h.text('ca.crt')
  const current = h.secret()!
  h.fake.seed({ ...current, data: { ...(current.data as JsonObject), 'tls.crt': b64('garbage') } })
  const result = await rotation.reconcile()
  t.same(result.reasons, ['no serving certificate'])
  t.same(result.missing, ['mutatingwebhookconfigurations/not-installed'])
  t.equal(h.text('ca.crt'), caPem)
  t.ok(new X509Certificate(h.text('tls.crt')).verify(new X509Certificate(caPem).publicKey))
})

t.test('run by the Lease holder: creates the Secret, stops writing once leadership ends', async (t) => {
  const h = await harness(t)
  const { rotation, pairs } = h.rotation({ certValidityMs: 60 * MINUTE, checkIntervalMs: 5 })
  const lease = new LeaderLease({ api: h.fake.kubeConfig(), namespace: NS, name: 'volsync-autorestore', identity: 'pod-a', retryPeriodMs: 10, onStartedLeading: (signal) => rotation.lead(signal) })
  t.teardown(() => lease.stop())
  lease.start()
  await h.fake.waitFor(() => pairs.length === 1)
  h.clock.advance(45 * MINUTE)
  await h.fake.waitFor(() => pairs.length === 2)
  t.equal(pairs[1]!.cert, h.text('tls.crt'), 'renewed by the leader loop')

  await lease.stop()
  const secretWrites = (): number => h.writes().filter((w) => w.path.startsWith(`/api/v1/namespaces/${NS}/secrets`)).length
  const written = secretWrites()
  h.clock.advance(45 * MINUTE)
  const follower = h.rotation({ checkIntervalMs: 5 })
  await follower.rotation.start()
  await h.fake.waitFor(() => h.fake.requests.filter((r) => r.path === SECRET_PATH).length > 10)
  t.equal(secretWrites(), written, 'no Secret writes after leadership ended, although renewal is due')
})

t.test('options', async (t) => {
  const h = await harness(t)
  t.throws(() => h.rotation({ certValidityMs: DAY, renewBeforeMs: DAY }), /renewBeforeMs/)
  t.throws(() => h.rotation({ caValidityMs: 30 * DAY, renewBeforeMs: 20 * DAY, certValidityMs: 25 * DAY }), /CA renewal window/)
})

t.test('cert-manager mode (no server.tls.selfManaged): the mounted files are served; the API and caBundle are never touched', async (t) => {
  const h = await harness(t)
  // What cert-manager mounts: a certificate from a CA the server never sees the key of.
  const ca = createCertificateAuthority({ days: 1 })
  const issued = createServingCertificate({ ca, service: SERVICE, namespace: NS, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 1 })
  const dir = await mkdtemp(join(tmpdir(), 'cert-manager-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'tls.crt'), issued.certPem)
  await writeFile(join(dir, 'tls.key'), issued.keyPem)
  const defaults = defaultConfig()
  t.equal(defaults.server.tls.selfManaged, undefined, 'files are the default mode')
  const config = { ...defaults, server: { ...defaults.server, tls: { ...defaults.server.tls, certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') } } }
  const bundles = h.caBundles()
  h.fake.clearRequests()

  // The API server is reachable (kube credentials given): still nothing may be read or written there.
  const source = tlsSource({ config, kubeConfig: h.fake.kubeConfig(), onReload: () => {}, log: silentLog })
  t.teardown(() => source.close())
  t.same(source.loops.map((l) => [l.name, l.leaderOnly]), [['tls', false]], 'only the served certificate\'s health: no rotation loop, on the leader or elsewhere')
  const context = await source.context()
  const port = await serveWith(t, context)
  t.equal(await servedFingerprint(port, ca.certPem), new X509Certificate(issued.certPem).fingerprint256, 'serves the mounted certificate')
  t.same(h.fake.requests, [], 'no request to the API server')
  t.same(h.caBundles(), bundles, 'every caBundle as cert-manager\'s cainjector left it')
  t.equal(h.secret(), undefined, 'no TLS Secret created')
})
