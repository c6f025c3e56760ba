import { X509Certificate } from 'node:crypto'
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createCertificateAuthority, createServingCertificate, type PemPair } from '../../src/tls/certificate-authority.ts'
import type { Log } from '../../src/log.ts'
import { ReloadingTlsContext, type TlsReloadEvent } from '../../src/tls/reloading-context.ts'

const SERVICE = { service: 'volsync-autorestore', namespace: 'volsync-system', ipAddresses: ['127.0.0.1'] }
const ca1 = createCertificateAuthority({ commonName: 'ca-one' })
const ca2 = createCertificateAuthority({ commonName: 'ca-two' })
const certA = createServingCertificate({ ca: ca1, ...SERVICE })
const certB = createServingCertificate({ ca: ca1, ...SERVICE }) // same CA, new key and serial
const certC = createServingCertificate({ ca: ca2, ...SERVICE }) // a rotated CA

// Only teardown is needed; the root TAP and subtest types differ otherwise.
type Tap = Pick<typeof t, 'teardown'>

// Writes key then certificate by rename, the way cert-manager's atomic writers do.
function installPair(dir: string, pair: PemPair): void {
  for (const [name, contents] of [['tls.key', pair.keyPem], ['tls.crt', pair.certPem]] as const) {
    writeFileSync(join(dir, `.${name}.tmp`), contents, { mode: 0o600 })
    renameSync(join(dir, `.${name}.tmp`), join(dir, name))
  }
}

function recordingLogger(): Pick<Log, 'info' | 'warn'> & { lines: { level: string; obj: object; msg: string }[] } {
  const lines: { level: string; obj: object; msg: string }[] = []
  return {
    lines,
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
  }
}

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(20)
  }
}

interface Served {
  port: number
  handshakes: () => number
}

async function serve(t: Tap, ctx: ReloadingTlsContext): Promise<Served> {
  const server = https.createServer({ ...ctx.current(), keepAliveTimeout: 60_000 }, (_req, res) => res.end('ok'))
  let handshakes = 0
  server.on('secureConnection', () => {
    handshakes += 1
  })
  ctx.applyTo(server)
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((done) => server.close(() => done()))
  })
  return { port: (server.address() as AddressInfo).port, handshakes: () => handshakes }
}

interface Reply {
  fingerprint256: string
  socket: TLSSocket
  body: string
}

function get(port: number, options: { agent?: https.Agent; ca?: string[] }): Promise<Reply> {
  return new Promise((done, fail) => {
    const req = https.request(
      // agent: false gives a fresh connection with no TLS session reuse.
      { host: '127.0.0.1', port, path: '/', agent: options.agent ?? false, ...(options.ca ? { ca: options.ca } : {}) },
      (res) => {
        const socket = res.socket as TLSSocket
        const fingerprint256 = socket.getPeerCertificate().fingerprint256
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (body += chunk))
        res.on('end', () => done({ fingerprint256, socket, body }))
      },
    )
    req.on('error', fail)
    req.end()
  })
}

const fingerprint = (pair: PemPair): string => new X509Certificate(pair.certPem).fingerprint256

t.test('new connections get the new certificate, open keep-alive connections survive', async (t) => {
  const dir = t.testdir()
  installPair(dir, certA)
  const events: TlsReloadEvent[] = []
  const logger = recordingLogger()
  const ctx = new ReloadingTlsContext({
    certFile: join(dir, 'tls.crt'),
    keyFile: join(dir, 'tls.key'),
    log: logger,
    pollIntervalMs: 0, // prove the directory watch alone is enough
    onReload: (event) => events.push(event),
  })
  t.teardown(() => ctx.close())
  const { port, handshakes } = await serve(t, ctx)
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca1.certPem })
  t.teardown(() => agent.destroy())

  const before = await get(port, { agent })
  t.equal(before.body, 'ok')
  t.equal(before.fingerprint256, fingerprint(certA), 'serves A')
  t.equal(handshakes(), 1)

  installPair(dir, certB)
  await waitFor('reload to B', () => ctx.reloads === 1)
  t.equal(ctx.current().cert, certB.certPem)
  t.equal(ctx.failures, 0, 'the key-then-cert write was seen as one change')

  const kept = await get(port, { agent })
  t.equal(kept.body, 'ok', 'keep-alive connection still usable after the swap')
  t.equal(kept.socket, before.socket, 'same client socket')
  t.equal(handshakes(), 1, 'no new handshake on the kept connection')
  t.equal(kept.fingerprint256, fingerprint(certA), 'kept connection still carries A')

  const fresh = await get(port, { ca: [ca1.certPem] })
  t.equal(fresh.fingerprint256, fingerprint(certB), 'a new connection sees B')
  t.equal(handshakes(), 2)

  t.equal(events.length, 1)
  t.match(events[0], { ok: true, reloads: 1, failures: 0, fingerprint256: fingerprint(certB) })
  const logged = JSON.stringify(logger.lines)
  t.notMatch(logged, /BEGIN/, 'no PEM material in the logs')
  t.match(logged, /reloaded TLS certificate/)
})

t.test('a mismatched or half-written pair is ignored and counted', async (t) => {
  const dir = t.testdir()
  installPair(dir, certA)
  const events: TlsReloadEvent[] = []
  const logger = recordingLogger()
  const ctx = new ReloadingTlsContext({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), log: logger, pollIntervalMs: 0 })
  ctx.onReload = (event) => events.push(event) // wired after construction, as metrics would be
  t.teardown(() => ctx.close())
  const { port } = await serve(t, ctx)

  // B's certificate with A's key still in place.
  writeFileSync(join(dir, '.tls.crt.tmp'), certB.certPem)
  renameSync(join(dir, '.tls.crt.tmp'), join(dir, 'tls.crt'))
  await waitFor('mismatch to be rejected', () => ctx.failures === 1)
  t.equal(ctx.reloads, 0)
  t.equal(ctx.current().cert, certA.certPem, 'still holding A')
  t.equal((await get(port, { ca: [ca1.certPem] })).fingerprint256, fingerprint(certA), 'still serving A')
  t.match(events, [{ ok: false, failures: 1, error: /do not match/ }])
  const rejected = logger.lines.find((line) => line.level === 'warn')?.obj as { err?: unknown } | undefined
  t.ok(rejected?.err instanceof Error, 'the rejection is logged as { err } with an Error')
  t.match(rejected?.err, { message: /do not match/ })

  // A truncated certificate, as a non-atomic writer would leave mid-write.
  writeFileSync(join(dir, 'tls.crt'), certA.certPem.slice(0, 200))
  await waitFor('truncated cert to be rejected', () => ctx.failures === 2)
  t.equal(ctx.checkNow(), 'rejected', 'still bad on a re-check')
  t.equal(ctx.failures, 2, 'the same bad pair is counted once')
  t.equal((await get(port, { ca: [ca1.certPem] })).fingerprint256, fingerprint(certA), 'still serving A')

  // Completing the write recovers.
  writeFileSync(join(dir, 'tls.key'), certB.keyPem)
  writeFileSync(join(dir, 'tls.crt'), certB.certPem)
  await waitFor('recovery to B', () => ctx.reloads === 1)
  t.equal((await get(port, { ca: [ca1.certPem] })).fingerprint256, fingerprint(certB))
  t.equal(ctx.failures, 2)

  const logged = JSON.stringify(logger.lines)
  t.notMatch(logged, /BEGIN|PRIVATE/, 'no PEM material in the logs')
  t.match(logged, /still serving the previous one/)
})

t.test('Kubernetes-style ..data symlink swap with a rotated CA', async (t) => {
  const dir = t.testdir()
  const generation = (name: string, pair: PemPair): void => {
    mkdirSync(join(dir, name))
    writeFileSync(join(dir, name, 'tls.crt'), pair.certPem)
    writeFileSync(join(dir, name, 'tls.key'), pair.keyPem)
  }
  generation('..2025_01', certA)
  symlinkSync('..2025_01', join(dir, '..data'))
  symlinkSync('..data/tls.crt', join(dir, 'tls.crt'))
  symlinkSync('..data/tls.key', join(dir, 'tls.key'))

  const ctx = new ReloadingTlsContext({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), pollIntervalMs: 0 })
  t.teardown(() => ctx.close())
  const { port } = await serve(t, ctx)
  const trustBoth = [ca1.certPem, ca2.certPem]
  t.equal((await get(port, { ca: trustBoth })).fingerprint256, fingerprint(certA))

  // What the kubelet's atomic writer does: new timestamped dir, new symlink, rename over ..data.
  generation('..2025_02', certC)
  symlinkSync('..2025_02', join(dir, '..data_tmp'))
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
  rmSync(join(dir, '..2025_01'), { recursive: true })

  await waitFor('reload to C', () => ctx.reloads === 1)
  t.equal((await get(port, { ca: trustBoth })).fingerprint256, fingerprint(certC), 'new CA chain served')
  await t.rejects(get(port, { ca: [ca1.certPem] }), 'old CA no longer trusts the server')
  t.equal(ctx.failures, 0)
})

t.test('polling catches changes when watching is off', async (t) => {
  const dir = t.testdir()
  installPair(dir, certA)
  const ctx = new ReloadingTlsContext({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), watch: false, pollIntervalMs: 50 })
  t.teardown(() => ctx.close())
  installPair(dir, certB)
  await waitFor('poll to reload', () => ctx.reloads === 1)
  t.equal(ctx.current().key, certB.keyPem)
})

t.test('applyTo keeps base options across reloads', async (t) => {
  const dir = t.testdir()
  installPair(dir, certA)
  const ctx = new ReloadingTlsContext({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), watch: false, pollIntervalMs: 0 })
  t.teardown(() => ctx.close())
  const applied: object[] = []
  const detach = ctx.applyTo({ setSecureContext: (options) => applied.push(options) }, { minVersion: 'TLSv1.3' })
  installPair(dir, certB)
  t.equal(ctx.checkNow(), 'reloaded')
  t.same(applied, [
    { minVersion: 'TLSv1.3', cert: certA.certPem, key: certA.keyPem },
    { minVersion: 'TLSv1.3', cert: certB.certPem, key: certB.keyPem },
  ])
  detach()
  installPair(dir, certA)
  t.equal(ctx.checkNow(), 'reloaded')
  t.equal(applied.length, 2, 'a detached server is left alone')
  t.equal(ctx.checkNow(), 'unchanged')
})

t.test('a throwing onReload hook does not stop reloads', async (t) => {
  const dir = t.testdir()
  installPair(dir, certA)
  const logger = recordingLogger()
  const ctx = new ReloadingTlsContext({
    certFile: join(dir, 'tls.crt'),
    keyFile: join(dir, 'tls.key'),
    log: logger,
    watch: false,
    pollIntervalMs: 0,
    onReload: () => {
      throw new Error('metrics broke')
    },
  })
  t.teardown(() => ctx.close())
  installPair(dir, certB)
  t.equal(ctx.checkNow(), 'reloaded')
  t.equal(ctx.current().cert, certB.certPem)
  t.match(logger.lines, [{ level: 'info' }, { level: 'info' }, { level: 'warn', msg: /onReload hook threw/ }])
})

t.test('the initial pair must be valid', async (t) => {
  const dir = t.testdir()
  t.throws(() => new ReloadingTlsContext({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') }), /ENOENT/)
  writeFileSync(join(dir, 'tls.crt'), certA.certPem)
  writeFileSync(join(dir, 'tls.key'), certB.keyPem)
  t.throws(() => new ReloadingTlsContext({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') }), /do not match/)
})

t.test('close stops watching', async (t) => {
  const dir = t.testdir()
  installPair(dir, certA)
  const ctx = new ReloadingTlsContext({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), pollIntervalMs: 20 })
  ctx.close()
  ctx.close() // idempotent
  installPair(dir, certB)
  await sleep(200) // long enough for the watch, the debounce and several polls to have fired
  t.equal(ctx.checkNow(), 'unchanged')
  t.equal(ctx.reloads, 0)
  t.equal(ctx.current().cert, certA.certPem)
})

// The kind of fault: a directory watch that reacts to every name in the directory. A file written
// beside the certificates every few milliseconds (a log file, another Secret key) re-armed the debounce
// on each write, so a rotated certificate waited, with polling off, until the writer stopped.
t.test('a busy unrelated file beside the certificates does not hold back a reload', async (t) => {
  const dir = t.testdir()
  installPair(dir, certA)
  const ctx = new ReloadingTlsContext({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), pollIntervalMs: 0, debounceMs: 50 })
  t.teardown(() => ctx.close())
  let writes = 0
  const writer = setInterval(() => writeFileSync(join(dir, 'server.log'), `line ${++writes}\n`, { flag: 'a' }), 5)
  // Stopped in the test itself: a write during the test directory's removal would fail it.
  try {
    await waitFor('the other file being written', () => writes >= 5)
    const writesAtInstall = writes
    installPair(dir, certB)
    await waitFor('reload to B while the other file is still being written', () => ctx.reloads === 1, 2000)
    t.ok(writesAtInstall >= 5, `the other file was being written when the pair was replaced (${writesAtInstall} writes before, ${writes} by the reload)`)
    t.equal(ctx.current().cert, certB.certPem)
  } finally {
    clearInterval(writer)
  }
})
