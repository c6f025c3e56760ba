// Issue 13 item 10: every metric the server exports passes `promtool check metrics` (Debian's
// `prometheus` package ships promtool; .ci/run installs it): no gauge named _total, counters end in
// _total. Also the TLS and reload gauges of items 1 and 6 as a scrape shows them.
import { spawnSync } from 'node:child_process'
import t from 'tap'
import { createMetrics } from '../../src/server/metrics.ts'
import type { ServedTlsState } from '../../src/tls/reloading-context.ts'
import { metricSample } from '../support/live-webhook.ts'
import { NOW, snapshotOf } from '../support/snapshot.ts'

const base = snapshotOf()
// Watches as the API-server source reports them: restarts are a monotonic count.
const snapshot = { ...base, cluster: { ...base.cluster, watches: [{ resource: 'persistentvolumeclaims', lastList: NOW, lastEvent: NOW, restarts: 3, error: null }] } }
let tlsState: ServedTlsState | undefined = {
  reloads: 1, failures: 1, lastReloadError: 'certificate expired at 2026-01-01T00:00:00.000Z', notBefore: new Date(NOW - 1000),
  notAfter: new Date('2027-03-16T09:00:00Z'), fingerprint256: 'AA', dnsNames: [], problem: null,
}
let configOk = false
const metrics = createMetrics({
  readSnapshot: () => snapshot, isLeader: () => true, tls: () => tlsState, configReloadSucceeded: () => configOk,
  passwordChecks: () => ({ accepted: 1, dropped: 0, duplicates: 0, unknownRepository: 0, completed: 1, failed: 0, inFlight: 0, pending: 0 }),
})
// Every labelled series present at least once, so promtool sees each family with a sample.
metrics.admissionRequests.inc({ webhook: 'mutate', kind: 'PersistentVolumeClaim', operation: 'CREATE', decision: 'restore' })
metrics.admissionDuration.observe({ webhook: 'mutate' }, 0.0002)
metrics.invalidReviews.inc({ webhook: 'mutate' })
metrics.configReloads.inc({ result: 'failure' })
metrics.tlsReloads.inc({ result: 'success' })
metrics.catalogPolls.inc({ source: 'nas', result: 'success' })
metrics.catalogPollDuration.observe({ source: 'nas' }, 0.5)
metrics.prewarmActions.inc({ action: 'create', result: 'success' })

const probe = spawnSync('promtool', ['--version'], { encoding: 'utf8' })
const PROMTOOL_SKIP = probe.error ? `promtool is not installed (Debian: apt-get install prometheus): ${probe.error.message}` : false

t.test('promtool check metrics finds nothing to complain about', { skip: PROMTOOL_SKIP }, async (t) => {
  const text = await metrics.registry.metrics()
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 })
  t.equal(result.status, 0, `promtool exit status (output: ${result.stdout}${result.stderr})`)
  t.equal(`${result.stdout}${result.stderr}`.trim(), '', 'no lint finding')
})

t.test('the scrape: watch restarts a counter, TLS expiry and last-reload gauges', async (t) => {
  const text = await metrics.registry.metrics()
  t.match(text, /# TYPE volsync_autorestore_watch_restarts_total counter/)
  t.equal(metricSample(text, 'volsync_autorestore_watch_restarts_total', { resource: 'persistentvolumeclaims' }), 3)
  t.notMatch(text, /^volsync_autorestore_watch_restarts[ {]/m, 'the old gauge is gone')
  t.notMatch(text, /nodejs_active_(handles|requests|resources)_total/, 'no gauge named _total')
  t.match(text, /# TYPE volsync_autorestore_tls_certificate_not_after_seconds gauge/)
  t.equal(metricSample(text, 'volsync_autorestore_tls_certificate_not_after_seconds'), Date.parse('2027-03-16T09:00:00Z') / 1000)
  t.equal(metricSample(text, 'volsync_autorestore_tls_last_reload_success'), 0, 'a replacement is refused now')
  t.equal(metricSample(text, 'volsync_autorestore_config_last_reload_success'), 0)

  tlsState = { ...tlsState!, lastReloadError: null, reloads: 2 }
  configOk = true
  const later = await metrics.registry.metrics()
  t.equal(metricSample(later, 'volsync_autorestore_tls_last_reload_success'), 1, 'cleared once the offered pair is served')
  t.equal(metricSample(later, 'volsync_autorestore_config_last_reload_success'), 1)

  tlsState = undefined
  const before = await metrics.registry.metrics()
  t.equal(metricSample(before, 'volsync_autorestore_tls_certificate_not_after_seconds'), 0, '0 before a certificate is served')
  t.equal(metricSample(before, 'volsync_autorestore_tls_last_reload_success'), 1, 'nothing refused yet')
})
