// Every Prometheus metric the server exports, defined in one place.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { findMissedRestores } from '../controllers/missed-restores.ts'
import type { PasswordVerdictCounts } from '../catalog/password-verdicts.ts'
import type { Snapshot } from '../state/snapshot.ts'
import type { ServedTlsState } from '../tls/reloading-context.ts'
import { participatingBackupHealth } from '../volsync/backup-health.ts'

const PREFIX = 'volsync_autorestore_'

export interface MetricSources {
  /** The snapshot the state gauges read at scrape time. */
  readonly readSnapshot: () => Snapshot
  /** Whether this replica holds the Lease (absent: no API server, no leader election). */
  readonly isLeader?: () => boolean
  /** The Kopia password-check queue's counts (see catalog/password-verdicts.ts). */
  readonly passwordChecks?: () => PasswordVerdictCounts
  /** The served certificate and its last reload (absent or undefined: not serving yet). */
  readonly tls?: () => ServedTlsState | undefined
  /** Whether the last config file reload was applied (true when none failed or no file is watched). */
  readonly configReloadSucceeded?: () => boolean
}

/**
 * prom-client's default metrics that break the exposition conventions (`promtool check metrics`):
 * gauges named `_total`. Their per-type twins without the suffix (`nodejs_active_handles`, ...) stay.
 */
const NONCONFORMING_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']

/**
 * Registers every metric of the server in a new registry. Counters the loops increment are
 * returned; gauges are read from `sources` at scrape time, so they cannot drift from the state.
 */
export function createMetrics(sources: MetricSources) {
  const { readSnapshot, isLeader, passwordChecks, tls, configReloadSucceeded } = sources
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: PREFIX })
  for (const name of NONCONFORMING_DEFAULT_METRICS) registry.removeSingleMetric(`${PREFIX}${name}`)

  const admissionRequests = new Counter({
    name: `${PREFIX}admission_requests_total`,
    help: 'AdmissionReview requests answered, by webhook, object kind, operation and decision.',
    labelNames: ['webhook', 'kind', 'operation', 'decision'] as const,
    registers: [registry],
  })
  const admissionDuration = new Histogram({
    name: `${PREFIX}admission_duration_seconds`,
    help: 'Time the server spent deciding one AdmissionReview (parse to response), excluding the network.',
    labelNames: ['webhook'] as const,
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  })
  const invalidReviews = new Counter({
    name: `${PREFIX}admission_invalid_requests_total`,
    help: 'Request bodies rejected with HTTP 400 because they were not a valid AdmissionReview.',
    labelNames: ['webhook'] as const,
    registers: [registry],
  })
  const configReloads = new Counter({
    name: `${PREFIX}config_reloads_total`,
    help: 'Configuration file reloads, by result (success, or failure: the last good config stays).',
    labelNames: ['result'] as const,
    registers: [registry],
  })
  const tlsReloads = new Counter({
    name: `${PREFIX}tls_certificate_reloads_total`,
    help: 'Serving certificate reloads from disk, by result.',
    labelNames: ['result'] as const,
    registers: [registry],
  })
  new Gauge({
    name: `${PREFIX}config_last_reload_success`,
    help: '1 when the last config file reload was applied (or none failed), 0 while the file on disk is rejected and the last good config stays in force.',
    registers: [registry],
    collect() { this.set((configReloadSucceeded?.() ?? true) ? 1 : 0) },
  })
  new Gauge({
    name: `${PREFIX}tls_last_reload_success`,
    help: '1 when the certificate offered last (files or Secret) is the one served, 0 while a replacement is refused (expired, not yet valid, wrong names, mismatched key) and the previous one is served.',
    registers: [registry],
    collect() {
      const state = tls?.()
      this.set(state === undefined || state.lastReloadError === null ? 1 : 0)
    },
  })
  new Gauge({
    name: `${PREFIX}tls_certificate_not_after_seconds`,
    help: 'Expiry (notAfter) of the served serving certificate, Unix time in seconds (0 before one is served); alert well before time() reaches it.',
    registers: [registry],
    collect() {
      const state = tls?.()
      this.set(state === undefined ? 0 : state.notAfter.getTime() / 1000)
    },
  })
  const catalogPolls = new Counter({
    name: `${PREFIX}catalog_polls_total`,
    help: 'Catalog source polls, by source and result.',
    labelNames: ['source', 'result'] as const,
    registers: [registry],
  })
  const catalogPollDuration = new Histogram({
    name: `${PREFIX}catalog_poll_duration_seconds`,
    help: 'Duration of one catalog source poll.',
    labelNames: ['source'] as const,
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120],
    registers: [registry],
  })

  // State gauges are read from the current snapshot at scrape time, so they can never drift from it.
  new Gauge({
    name: `${PREFIX}state_generation`,
    help: 'Generation of the state snapshot admission reads (increments on every publish).',
    registers: [registry],
    collect() { this.set(readSnapshot().generation) },
  })
  new Gauge({
    name: `${PREFIX}replication_destinations`,
    help: 'ReplicationDestinations known, by whether they have a latestImage.',
    labelNames: ['ready'] as const,
    registers: [registry],
    collect() {
      let ready = 0
      let notReady = 0
      for (const rd of readSnapshot().cluster.replicationDestinations.values()) rd.latestImage ? ready++ : notReady++
      this.set({ ready: 'true' }, ready)
      this.set({ ready: 'false' }, notReady)
    },
  })
  new Gauge({
    name: `${PREFIX}cluster_state_synced`,
    help: '1 when the cluster state source has loaded (offline directory) or synced (API server).',
    registers: [registry],
    collect() { this.set(readSnapshot().cluster.synced ? 1 : 0) },
  })
  new Gauge({
    name: `${PREFIX}catalog_entries`,
    help: 'PVC backups known per catalog source (last known good when the source is failing).',
    labelNames: ['source'] as const,
    registers: [registry],
    collect() {
      this.reset()
      for (const source of readSnapshot().catalog.sources) this.set({ source: source.name }, source.entries.length)
    },
  })
  new Gauge({
    name: `${PREFIX}catalog_last_success_timestamp_seconds`,
    help: 'Unix time of the last successful poll per catalog source (0: never).',
    labelNames: ['source'] as const,
    registers: [registry],
    collect() {
      this.reset()
      for (const source of readSnapshot().catalog.sources) this.set({ source: source.name }, (source.lastSuccess ?? 0) / 1000)
    },
  })
  new Gauge({
    name: `${PREFIX}catalog_last_success_age_seconds`,
    help: 'Seconds since the last successful poll per catalog source: how old the entries admission uses are (-1: never).',
    labelNames: ['source'] as const,
    registers: [registry],
    collect() {
      this.reset()
      const now = Date.now()
      for (const source of readSnapshot().catalog.sources) this.set({ source: source.name }, source.lastSuccess === null ? -1 : (now - source.lastSuccess) / 1000)
    },
  })
  new Gauge({
    name: `${PREFIX}catalog_diagnostics`,
    help: 'Problems a catalog source noticed that a person should fix, by source and code (see /status).',
    labelNames: ['source', 'code'] as const,
    registers: [registry],
    collect() {
      this.reset()
      for (const source of readSnapshot().catalog.sources) {
        const counts = new Map<string, number>()
        for (const d of source.diagnostics) counts.set(d.code, (counts.get(d.code) ?? 0) + 1)
        for (const [code, count] of counts) this.set({ source: source.name, code }, count)
      }
    },
  })
  new Gauge({
    name: `${PREFIX}catalog_source_up`,
    help: '1 when the last poll of the catalog source succeeded.',
    labelNames: ['source'] as const,
    registers: [registry],
    collect() {
      this.reset()
      for (const source of readSnapshot().catalog.sources) this.set({ source: source.name }, source.lastSuccess !== null && source.error === null ? 1 : 0)
    },
  })

  const prewarmActions = new Counter({
    name: `${PREFIX}prewarm_actions_total`,
    help: 'ReplicationDestinations the pre-warm controller created or triggered, by action and result.',
    labelNames: ['action', 'result'] as const,
    registers: [registry],
  })
  new Gauge({
    name: `${PREFIX}missed_restores`,
    help: 'Participating PVCs created without a dataSourceRef although a backup already existed (see /status).',
    registers: [registry],
    collect() { this.set(findMissedRestores(readSnapshot(), Date.now()).length) },
  })
  // Backup health (volsync/backup-health.ts). The per-PVC series are labelled only with participating
  // PVCs that have a ReplicationSource: a bounded set, reset at every scrape so a deleted PVC's series goes.
  new Gauge({
    name: `${PREFIX}backup_last_success_age_seconds`,
    help: 'Seconds since the last successful backup (ReplicationSource status.lastSyncTime) per participating PVC (-1: never succeeded).',
    labelNames: ['namespace', 'pvc'] as const,
    registers: [registry],
    collect() {
      this.reset()
      const now = Date.now()
      for (const h of participatingBackupHealth(readSnapshot(), now)) this.set({ namespace: h.namespace, pvc: h.pvc }, h.lastSuccess === null ? -1 : (now - h.lastSuccess) / 1000)
    },
  })
  new Gauge({
    name: `${PREFIX}backup_overdue`,
    help: '1 when a participating PVC has had no successful backup within twice its ReplicationSource schedule\'s period (counted from the RS\'s creation when it never succeeded), else 0.',
    labelNames: ['namespace', 'pvc'] as const,
    registers: [registry],
    collect() {
      this.reset()
      for (const h of participatingBackupHealth(readSnapshot(), Date.now())) this.set({ namespace: h.namespace, pvc: h.pvc }, h.overdue ? 1 : 0)
    },
  })
  new Gauge({
    name: `${PREFIX}backup_last_results`,
    help: 'Participating PVCs by the result of their ReplicationSource\'s last mover run (status.latestMoverStatus.result: Successful, Failed; none before the first; other for any other value).',
    labelNames: ['result'] as const,
    registers: [registry],
    collect() {
      this.reset()
      const counts = new Map<string, number>([['Successful', 0], ['Failed', 0], ['none', 0], ['other', 0]])
      for (const h of participatingBackupHealth(readSnapshot(), Date.now())) {
        // VolSync writes Successful or Failed; anything else is "other", so the label set stays fixed.
        const result = h.lastResult === null ? 'none' : counts.has(h.lastResult) && h.lastResult !== 'other' ? h.lastResult : 'other'
        counts.set(result, (counts.get(result) ?? 0) + 1)
      }
      for (const [result, count] of counts) this.set({ result }, count)
    },
  })
  new Gauge({
    name: `${PREFIX}leader`,
    help: '1 on the replica that holds the Lease and runs the controllers (always 0 without an API server).',
    registers: [registry],
    collect() { this.set(isLeader?.() ? 1 : 0) },
  })
  new Gauge({
    name: `${PREFIX}watch_last_event_age_seconds`,
    help: 'Seconds since the last event or bookmark (or list) per watched resource (-1: never).',
    labelNames: ['resource'] as const,
    registers: [registry],
    collect() {
      this.reset()
      const now = Date.now()
      for (const watch of readSnapshot().cluster.watches) {
        const last = Math.max(watch.lastEvent ?? 0, watch.lastList ?? 0)
        this.set({ resource: watch.resource }, last === 0 ? -1 : (now - last) / 1000)
      }
    },
  })
  new Counter({
    name: `${PREFIX}watch_restarts_total`,
    help: 'Restarts of the watch per resource since start (dropped connections, errors, 410 Gone relists).',
    labelNames: ['resource'] as const,
    registers: [registry],
    collect() {
      // The informer keeps the monotonic count per resource; the counter mirrors it at scrape time.
      this.reset()
      for (const watch of readSnapshot().cluster.watches) this.inc({ resource: watch.resource }, watch.restarts)
    },
  })

  new Counter({
    name: `${PREFIX}kopia_password_checks_total`,
    help: 'Kopia password checks asked for by Secret admissions (validation.kopiaPassword), by outcome: accepted, dropped (pushed out of the bounded queue), duplicate, unknown-repository, completed, failed.',
    labelNames: ['outcome'] as const,
    registers: [registry],
    collect() {
      const counts = passwordChecks?.()
      if (!counts) return
      // The queue keeps the monotonic totals; the counter mirrors them at scrape time.
      this.reset()
      const outcomes = { accepted: counts.accepted, dropped: counts.dropped, duplicate: counts.duplicates, 'unknown-repository': counts.unknownRepository, completed: counts.completed, failed: counts.failed }
      for (const [outcome, value] of Object.entries(outcomes)) this.inc({ outcome }, value)
    },
  })
  new Gauge({
    name: `${PREFIX}kopia_password_checks_in_flight`,
    help: 'Kopia password derivations running now (bounded, off the event loop).',
    registers: [registry],
    collect() { this.set(passwordChecks?.().inFlight ?? 0) },
  })

  return { registry, prewarmActions, admissionRequests, admissionDuration, invalidReviews, configReloads, tlsReloads, catalogPolls, catalogPollDuration }
}

export type Metrics = ReturnType<typeof createMetrics>
