import { Writable } from 'node:stream'
import { test } from 'tap'
import { createLogger } from '../src/log.ts'
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
