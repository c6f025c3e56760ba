// `npm run bench` (backup part, issue 12): how evenly Jenkins-style `H` spreads generated backup
// schedules, and how long the backup generator's plan takes. For N hourly PVCs (100 and 1,000, across
// 20 namespaces, named like apps' PVCs), the most ReplicationSources that start in one minute of the
// hour against the ideal ceil(N/60); for daily PVCs (`H H(0-5) * * *`) the same over the 360 minutes
// 00:00-05:59. Then planBackups over 1,000 PVCs, none of which has its RS yet (every PVC an apply:
// the worst case), and over 1,000 whose RSs are all up to date (the steady state): the median of
// --rounds runs. Enforces nothing.
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { clusterStateFromObjects } from '../src/cluster/cluster-objects.ts'
import { parseConfig } from '../src/config/load.ts'
import { APPLIED_ANNOTATION, planBackups } from '../src/controllers/backup-plan.ts'
import type { JsonObject } from '../src/json.ts'
import { buildCatalogState } from '../src/state/catalog-state.ts'
import type { Snapshot } from '../src/state/snapshot.ts'
import { StateStore } from '../src/state/store.ts'
import { fmt, median, pad, padLeft } from './stats.ts'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '20' } } })
const ROUNDS = Number(values.rounds)
const NOW = Date.parse('2026-03-16T09:00:00Z')
const APPS = ['jellyfin', 'sonarr', 'radarr', 'prowlarr', 'bazarr', 'paperless', 'home-assistant', 'zigbee2mqtt', 'grafana', 'postgres']
const CONFIG = parseConfig('backup: { enabled: true, template: { kopia: { repository: "{{pvc}}-volsync-secret", copyMethod: Snapshot, retain: { hourly: 24, daily: 7 } } } }', 'bench')

function pvcs(n: number, label: string): JsonObject[] {
  const out: JsonObject[] = []
  for (let i = 0; i < n; i++) {
    const namespace = `team-${i % 20}`
    const name = `${APPS[i % APPS.length]}-${Math.floor(i / APPS.length)}${i % 3 === 0 ? '.data' : ''}`
    out.push({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace, uid: `uid-${i}`, labels: { backup: label }, creationTimestamp: '2026-01-01T00:00:00Z' }, spec: {}, status: { phase: 'Bound' } })
  }
  return out
}

function snapshotOf(objects: readonly unknown[]): Snapshot {
  const store = new StateStore(CONFIG)
  store.publish({ cluster: clusterStateFromObjects(objects, 'bench').state })
  return store.publish({ catalog: buildCatalogState([]) })
}

/** Start minutes of the plan's schedules, as minutes after midnight of one day (hourly: every hour counted once, in hour 0). */
function startMinutes(snapshot: Snapshot): number[] {
  return [...planBackups(snapshot, NOW).sources.values()].map(({ schedule }) => {
    const [minute, hour] = schedule.split(' ')
    return (hour === '*' ? 0 : Number(hour)) * 60 + Number(minute)
  })
}

console.log('backup schedule spread (H expanded from sha256 of namespace/PVC)')
console.log(`${pad('PVCs', 8)}${pad('schedule', 18)}${padLeft('window (min)', 13)}${padLeft('busiest minute', 16)}${padLeft('ideal', 8)}${padLeft('ratio', 8)}${padLeft('minutes used', 14)}`)
for (const [label, template, window] of [['hourly', 'H * * * *', 60], ['daily', 'H H(0-5) * * *', 360]] as const) {
  for (const n of [100, 1000]) {
    const counts = new Map<number, number>()
    for (const minute of startMinutes(snapshotOf(pvcs(n, label)))) counts.set(minute, (counts.get(minute) ?? 0) + 1)
    const busiest = Math.max(...counts.values())
    const ideal = Math.ceil(n / window)
    console.log(`${pad(String(n), 8)}${pad(template, 18)}${padLeft(String(window), 13)}${padLeft(String(busiest), 16)}${padLeft(String(ideal), 8)}${padLeft(`${fmt(busiest / ideal, 2)}x`, 8)}${padLeft(`${counts.size}/${Math.min(window, n)}`, 14)}`)
  }
}

/** ms per planBackups over `snapshot`: the median of ROUNDS runs after one warm-up. */
function planMs(snapshot: Snapshot): { ms: number; actions: number } {
  const actions = planBackups(snapshot, NOW).actions.length
  const times: number[] = []
  for (let i = 0; i < ROUNDS; i++) {
    const start = performance.now()
    planBackups(snapshot, NOW)
    times.push(performance.now() - start)
  }
  return { ms: median(times), actions }
}

const fresh = pvcs(1000, 'hourly')
const cold = planMs(snapshotOf(fresh))
// The steady state: every RS exists as the plan would apply it (its APPLIED_ANNOTATION matches).
const applied = planBackups(snapshotOf(fresh), NOW).actions.flatMap((a) => (a.type === 'apply' ? [a.body] : []))
const steady = planMs(snapshotOf([...fresh, ...applied]))
if (steady.actions !== 0) throw new Error(`the steady state planned ${steady.actions} actions`)
console.log('')
console.log(`planBackups, 1,000 hourly PVCs (median of ${ROUNDS}):`)
console.log(`  no RS yet (1,000 applies planned):   ${fmt(cold.ms, 1)} ms (${cold.actions} actions)`)
console.log(`  every RS up to date (nothing to do): ${fmt(steady.ms, 1)} ms (${steady.actions} actions; ${APPLIED_ANNOTATION} compared)`)
