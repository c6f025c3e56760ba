import { Writable } from 'node:stream'
import { test } from 'tap'
import { pino } from 'pino'
import { createLogger, REDACT_PATHS } from '../src/log.ts'
import { createCertificateAuthority } from '../src/tls/certificate-authority.ts'

function capture(): { log: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = []
  const sink = new Writable({ write(chunk: Buffer, _encoding, done) { chunks.push(chunk.toString()); done() } })
  return { log: createLogger('info', sink), lines: () => chunks.map((line) => JSON.parse(line) as Record<string, unknown>) }
}

test('an innocent field named key is logged as it is', async (t) => {
  const { log, lines } = capture()
  // What runtime.ts logs when a restart-only config key changed.
  log.warn({ key: 'server' }, 'config key server changed: it takes effect after a restart')
  t.match(lines()[0], { key: 'server', msg: /config key server changed/ })
})

test('a TLS private key is redacted wherever we hold one', async (t) => {
  const ca = createCertificateAuthority({ commonName: 'log-test-ca' })
  const { log, lines } = capture()
  log.info({ tls: { cert: ca.certPem, key: ca.keyPem } }, 'server tls options')
  log.info({ pair: { cert: ca.certPem, key: ca.keyPem } }, 'a TlsPair')
  log.info({ material: { cert: ca.certPem, key: ca.keyPem, caKey: ca.keyPem } }, 'TlsMaterial')
  log.info({ caKey: ca.keyPem }, 'a CA key')
  log.info(ca, 'a PemPair at the top')
  log.info({ ca }, 'a PemPair inside')
  log.info({ privateKey: ca.keyPem }, 'a private key at the top')
  log.info({ generated: { privateKey: ca.keyPem } }, 'a private key inside')
  const text = lines().map((line) => JSON.stringify(line)).join('\n')
  t.equal(lines().length, 8)
  t.notMatch(text, /PRIVATE KEY/, 'no private key reached a line')
  t.match(text, /BEGIN CERTIFICATE/, 'the public certificates did (so redaction is not blanket)')
  t.match(lines()[0], { tls: { key: '[redacted]' } })
})

test('an Error logged as { err } keeps its type, message and stack', async (t) => {
  const { log, lines } = capture()
  log.error({ err: new TypeError('boom') }, 'failed')
  t.match(lines()[0], { err: { type: 'TypeError', message: 'boom', stack: /TypeError: boom\n\s+at / } })
})

/** `path` (pino syntax, `*` for any key) as an object holding `value` there. */
function objectAt(path: string, value: unknown): Record<string, unknown> {
  return path.split('.').reduceRight<unknown>((inner, key) => ({ [key === '*' ? 'anyField' : key]: inner }), value) as Record<string, unknown>
}

test('every REDACT_PATHS path is censored in a logged object, in child bindings and in an error\'s own fields', async (t) => {
  const { log, lines } = capture()
  REDACT_PATHS.forEach((path, i) => log.info(objectAt(path, `SECRET-${i}`), `path ${path}`))
  REDACT_PATHS.forEach((path, i) => log.child(objectAt(path, `BOUND-${i}`)).info({}, `bound ${path}`))
  for (const name of ['password', 'secretAccessKey', 'KOPIA_PASSWORD', 'data']) {
    log.error({ err: Object.assign(new Error('failed'), { [name]: `ERRFIELD-${name}` }) }, 'an error with a secret field')
  }
  log.error({ err: { password: 'ERRFIELD-plain' } }, 'a thrown plain object')
  const text = lines().map((line) => JSON.stringify(line)).join('\n')
  t.equal(lines().length, REDACT_PATHS.length * 2 + 5)
  t.notMatch(text, /SECRET-|BOUND-|ERRFIELD-/, 'no value at a secret path reached a line')
  t.match(lines()[0], { password: '[redacted]' })
  t.match(lines().find((line) => line.msg === 'path *.KOPIA_PASSWORD'), { anyField: { KOPIA_PASSWORD: '[redacted]' } })
  t.match(lines().find((line) => line.msg === 'an error with a secret field'), { err: { message: 'failed', password: '[redacted]', stack: /Error: failed/ } })
})

test('the same lines as pino with the wildcard paths (explicit paths and the formatter are only faster)', async (t) => {
  const { log, lines } = capture()
  const chunks: string[] = []
  const reference = pino({ level: 'info', base: { name: 'volsync-autorestore' }, redact: { paths: [...REDACT_PATHS], censor: '[redacted]' } },
    new Writable({ write(chunk: Buffer, _encoding, done) { chunks.push(chunk.toString()); done() } }))
  const samples: Record<string, unknown>[] = [
    // The decision line, as src/server/admission-routes.ts writes it for every review.
    { webhook: 'mutate', uid: 'u-1', kind: 'PersistentVolumeClaim', operation: 'CREATE', namespace: 'media', name: 'jellyfin', rule: 'pvc-restore', decision: 'restore', reasons: ['ReplicationDestination jellyfin-dst has latestImage x'], dryRun: false, mode: 'enforce' },
    { source: { name: 'nas', password: 'p', passwordFile: '/f', nested: { password: 'deeper is not a path' } } },
    { secret: { data: { a: 'YQ==' }, stringData: { b: 'c' } }, object: { data: {}, kind: 'Secret' } },
    { list: [{ password: 'arrays are not walked by *.x' }], count: 3, ok: true, none: null },
    { tls: { key: 'k', cert: 'c' }, ca: { certPem: 'c', keyPem: 'k' }, req: { headers: { authorization: 'Bearer t', host: 'h' } } },
  ]
  for (const sample of samples) {
    log.info(sample, 'line')
    reference.info(sample, 'line')
  }
  const withoutTime = (line: Record<string, unknown>) => ({ ...line, time: 0 })
  t.strictSame(lines().map(withoutTime), chunks.map((chunk) => withoutTime(JSON.parse(chunk) as Record<string, unknown>)))
  t.match(lines()[0], { webhook: 'mutate', decision: 'restore', reasons: ['ReplicationDestination jellyfin-dst has latestImage x'] }, 'the decision line is written as logged')
})

test('a URL with credentials in a top-level field or an error message is redacted', async (t) => {
  const { log, lines } = capture()
  log.warn({ endpoint: 'http://user:pass@minio:9000/b?X-Amz-Signature=abc', err: new Error('GET https://k:s@s3.example/x failed') }, 'poll failed')
  const text = JSON.stringify(lines()[0])
  t.notMatch(text, /pass@|k:s@|=abc/)
  t.match(lines()[0], { endpoint: 'http://redacted@minio:9000/b?X-Amz-Signature=redacted', err: { message: 'GET https://redacted@s3.example/x failed' } })
})
