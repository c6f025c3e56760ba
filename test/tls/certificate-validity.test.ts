// Issue 13 items 1 and 6: a replacement pair that is expired, not yet valid or does not cover the
// configured names is refused (the good one keeps being served); the refusal is reported until
// the served pair is what is offered again; an expiring served certificate is reported as a problem.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createCertificateAuthority, createServingCertificate, type PemPair } from '../../src/tls/certificate-authority.ts'
import { ReloadingTlsContext, type TlsPair, type TlsReloadEvent } from '../../src/tls/reloading-context.ts'

const DAY = 24 * 3600 * 1000
const SERVICE = { service: 'volsync-autorestore', namespace: 'volsync-system' }
const NAMES = ['volsync-autorestore.volsync-system.svc']
const ca = createCertificateAuthority({ commonName: 'validity-test-ca' })
const good = createServingCertificate({ ca, ...SERVICE })
const good2 = createServingCertificate({ ca, ...SERVICE })
// Issued 400 days ago for 365 days: expired 35 days ago.
const expired = createServingCertificate({ ca, ...SERVICE, now: new Date(Date.now() - 400 * DAY), days: 365 })
// Issued "tomorrow": notBefore is a day ahead (past the 5 min tolerance).
const future = createServingCertificate({ ca, ...SERVICE, now: new Date(Date.now() + DAY) })
const otherName = createServingCertificate({ ca, service: 'something-else', namespace: 'elsewhere' })
const pair = (p: PemPair): TlsPair => ({ cert: p.certPem, key: p.keyPem })

t.test('expired, not-yet-valid and wrong-name pairs are refused; the good one stays served', async (t) => {
  const events: TlsReloadEvent[] = []
  const ctx = new ReloadingTlsContext({ pair: pair(good), dnsNames: NAMES, onReload: (e) => events.push(e) })
  t.teardown(() => ctx.close())
  t.equal(ctx.state().problem, null)
  t.equal(ctx.state().lastReloadError, null)

  t.equal(ctx.applyPair(pair(expired)), 'rejected', 'expired')
  t.match(ctx.state().lastReloadError, /^certificate expired at \d{4}-/)
  t.equal(ctx.applyPair(pair(future)), 'rejected', 'not yet valid')
  t.match(ctx.state().lastReloadError, /^certificate is not valid before \d{4}-/)
  t.equal(ctx.applyPair(pair(otherName)), 'rejected', 'does not cover the Service name')
  t.match(ctx.state().lastReloadError, /does not cover volsync-autorestore\.volsync-system\.svc/)
  t.equal(ctx.current().cert, good.certPem, 'still serving the good pair')
  t.equal(ctx.failures, 3)
  t.match(events, [{ ok: false }, { ok: false }, { ok: false }])

  // The refused pair again: counted once, still reported.
  t.equal(ctx.applyPair(pair(otherName)), 'rejected')
  t.equal(ctx.failures, 3)
  t.not(ctx.state().lastReloadError, null)

  // A good replacement clears the report (the warning in /status must not stay forever).
  t.equal(ctx.applyPair(pair(good2)), 'reloaded')
  t.equal(ctx.state().lastReloadError, null)
  t.equal(ctx.state().failures, 3, 'the counter keeps its history')
})

t.test('the served pair offered again (files put back) clears the reload error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tls-validity-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const certFile = join(dir, 'tls.crt')
  const keyFile = join(dir, 'tls.key')
  const write = (p: PemPair) => {
    writeFileSync(keyFile, p.keyPem)
    writeFileSync(certFile, p.certPem)
  }
  write(good)
  const ctx = new ReloadingTlsContext({ certFile, keyFile, watch: false, pollIntervalMs: 0 })
  t.teardown(() => ctx.close())
  write(expired)
  t.equal(ctx.checkNow(), 'rejected', 'an expired pair copied over the files')
  t.match(ctx.state().lastReloadError, /expired/)
  t.equal(ctx.current().cert, good.certPem)
  write(good)
  t.equal(ctx.checkNow(), 'unchanged')
  t.equal(ctx.state().lastReloadError, null, 'cleared: the files are the served pair again')
})

t.test('without dnsNames only validity is checked (files mode default)', async (t) => {
  const ctx = new ReloadingTlsContext({ pair: pair(good) })
  t.teardown(() => ctx.close())
  t.equal(ctx.applyPair(pair(otherName)), 'reloaded')
  t.equal(ctx.applyPair(pair(expired)), 'rejected')
})

t.test('state(): the served certificate and its problem at the context clock', async (t) => {
  let now = Date.now()
  const ctx = new ReloadingTlsContext({ pair: pair(good), dnsNames: NAMES, now: () => now })
  t.teardown(() => ctx.close())
  const state = ctx.state()
  t.ok(state.notAfter.getTime() > now + 360 * DAY, 'a year ahead')
  t.ok(state.notBefore.getTime() <= now)
  t.ok(state.dnsNames.includes(NAMES[0]!))
  t.match(state.fingerprint256, /^[0-9A-F:]+$/)
  t.equal(state.problem, null)
  now = state.notAfter.getTime() + 1000
  t.match(ctx.state().problem, /^expired at /, 'the served certificate ran out while being served')
})

t.test('an initial pair that is expired is served (nothing better exists) and reported as a problem', async (t) => {
  const warned: string[] = []
  const log = { info() {}, warn(_obj: object, msg: string) { warned.push(msg) } }
  const ctx = new ReloadingTlsContext({ pair: pair(expired), log })
  t.teardown(() => ctx.close())
  t.match(ctx.state().problem, /^expired at /)
  t.match(warned, [/the TLS certificate cannot be used: expired at/])
  t.equal(ctx.applyPair(pair(good)), 'reloaded', 'a good pair replaces it')
  t.equal(ctx.state().problem, null)
})
