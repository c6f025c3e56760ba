// /status rows of issue 13: the served certificate (expiry, names, problem) and a refused reload
// that clears once a good pair is served (items 1, 6); every URL in the document and the page
// redacted (item 5).
import t from 'tap'
import type { LoopHealth } from '../../src/loop.ts'
import { readiness } from '../../src/server/readiness.ts'
import { renderStatusPage } from '../../src/server/status-page.ts'
import { statusDocument, type StatusExtras } from '../../src/server/status.ts'
import type { ServedTlsState } from '../../src/tls/reloading-context.ts'
import { NOW, snapshotOf, source } from '../support/snapshot.ts'

const DAY = 24 * 3600 * 1000
const LOADED: LoopHealth[] = ['cluster', 'catalog', 'tls'].map((name) => ({ name, loaded: true, gatesReadiness: true, error: null, lastSuccess: null }))
const served = (more: Partial<ServedTlsState> = {}): ServedTlsState => ({
  reloads: 1, failures: 0, lastReloadError: null, notBefore: new Date(NOW - DAY), notAfter: new Date(NOW + 90 * DAY),
  fingerprint256: 'AA:BB', dnsNames: ['volsync-autorestore.volsync-system.svc'], problem: null, ...more,
})
const extras = (tls: ServedTlsState | undefined, loops: LoopHealth[] = LOADED): StatusExtras => ({
  configError: null, clusterError: null, tlsReloads: tls?.reloads ?? 0, tlsFailures: tls?.failures ?? 0, tls, loops, readiness: readiness(loops),
})

t.test('the served certificate: expiry (RFC 3339 and seconds), names, fingerprint, in JSON and HTML', async (t) => {
  const doc = statusDocument(snapshotOf(), NOW, extras(served()))
  t.strictSame(doc.tls.certificate, {
    notBefore: new Date(NOW - DAY).toISOString(), notAfter: new Date(NOW + 90 * DAY).toISOString(), expiresInSeconds: 90 * 86400,
    dnsNames: ['volsync-autorestore.volsync-system.svc'], fingerprint256: 'AA:BB', problem: null,
  })
  t.equal(doc.tls.lastReloadError, null)
  t.strictSame(doc.summary.warnings, [])
  const page = renderStatusPage(doc)
  t.match(page, /<li class="tls-certificate">Serving certificate: <span class="ok">valid<\/span>, expires <time datetime="2026-06-14T09:00:00.000Z"[^>]*>2026-06-14T09:00:00.000Z<\/time> \(in 90 d\)/)
  t.notMatch(page, /tls-refused/)
  t.equal(statusDocument(snapshotOf(), NOW, extras(undefined)).tls.certificate, null, 'none before the webhook serves one')
})

t.test('a refused reload is shown while it stands and gone once a good pair is served; past failures do not warn', async (t) => {
  const refusing: LoopHealth[] = [...LOADED.slice(0, 2), { ...LOADED[2]!, error: 'refused a new certificate (still serving the previous one): certificate expired at 2026-01-01T00:00:00.000Z' }]
  const doc = statusDocument(snapshotOf(), NOW, extras(served({ failures: 1, lastReloadError: 'certificate expired at 2026-01-01T00:00:00.000Z' }), refusing))
  t.equal(doc.summary.ready, true, 'still ready: the good certificate is served')
  t.match(doc.summary.warnings, [/^tls: refused a new certificate/])
  t.match(renderStatusPage(doc), /<li class="tls-refused error">Refused a new certificate \(still serving the previous one\): certificate expired at 2026-01-01/)

  const after = statusDocument(snapshotOf(), NOW, extras(served({ reloads: 2, failures: 1 })))
  t.strictSame(after.summary.warnings, [], 'no warning left once the good pair is served')
  t.equal(after.tls.failures, 1, 'the count keeps its history')
  t.notMatch(renderStatusPage(after), /tls-refused/)
})

t.test('an expired served certificate: not ready, the reason in the summary and the TLS row', async (t) => {
  const problem = `expired at ${new Date(NOW - DAY).toISOString()}`
  const loops: LoopHealth[] = [...LOADED.slice(0, 2), { ...LOADED[2]!, unready: `the served certificate ${problem}` }]
  const doc = statusDocument(snapshotOf(), NOW, extras(served({ notAfter: new Date(NOW - DAY), problem }), loops))
  t.equal(doc.summary.ready, false)
  t.strictSame(doc.summary.pending, [`tls: the served certificate ${problem}`])
  t.equal(doc.tls.certificate?.expiresInSeconds, -86400)
  t.match(renderStatusPage(doc), /Serving certificate: <span class="error">expired at [^<]+<\/span>, expires .* \(24 h ago\)/)
})

t.test('expiring within 7 days is a warning', async (t) => {
  const doc = statusDocument(snapshotOf(), NOW, extras(served({ notAfter: new Date(NOW + 2 * DAY) })))
  t.match(doc.summary.warnings, [/^the served TLS certificate expires at 2026-03-18T09:00:00.000Z \(in 48 h\)/])
})

t.test('URLs with credentials are redacted in the JSON and the page (a source error embedding an endpoint)', async (t) => {
  const secretUrl = 'http://AKIAEXAMPLE:wJalrXUtnFEMI@minio.example:9000/backups/?X-Amz-Credential=AKIAEXAMPLE%2F20260316&X-Amz-Signature=0123abcd'
  const snapshot = snapshotOf({ sources: [source({ name: 'nas', error: `cannot list s3://backups/ at ${secretUrl}: AccessDenied` })] })
  const doc = statusDocument(snapshot, NOW, { ...extras(served()), configError: `reload rejected: cannot reach ${secretUrl}` })
  const json = JSON.stringify(doc)
  const page = renderStatusPage(doc)
  for (const [what, text] of [['JSON', json], ['HTML', page]] as const) {
    t.notMatch(text, /wJalrXUtnFEMI|AKIAEXAMPLE|0123abcd/, `${what}: no credential`)
    t.match(text, 'minio.example:9000/backups/', `${what}: still says where it points`)
  }
  t.match(doc.catalog.sources[0]?.error, 'at http://redacted@minio.example:9000/backups/?X-Amz-Credential=redacted&X-Amz-Signature=redacted: AccessDenied')
  t.match(doc.config.lastReloadError, 'http://redacted@minio.example:9000')
})
