// /status for people and for scripts: the view model (the real pvc-restore decision per PVC), the
// escaping of everything dynamic, content negotiation, and the page as a real headless chromium
// renders it from a running server.
import { copyFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { renderStatusPage, formatAge, wantsHtml, escapeHtml } from '../../src/server/status-page.ts'
import { statusDocument } from '../../src/server/status.ts'
import { statusView } from '../../src/server/status-view.ts'
import { readiness } from '../../src/server/readiness.ts'
import type { LoopHealth } from '../../src/loop.ts'
import type { Snapshot } from '../../src/state/snapshot.ts'
import { chromiumSkipReason, decodeEntities, dumpDom, elementAt, screenshot, textOf } from '../support/headless-browser.ts'
import {
  EXAMPLE_STATE, EXAMPLES, exampleConfigYaml, httpGet, makeCertificates, startTestRuntime, tempDir, waitReady, WebhookClient, type Teardown, type TestCertificates,
} from '../support/live-webhook.ts'
import { NOW, snapshotOf, source } from '../support/snapshot.ts'

const LOADED: LoopHealth[] = ['cluster', 'catalog', 'config'].map((name) => ({ name, loaded: true, gatesReadiness: name !== 'config', error: null, lastSuccess: null }))
const EXTRAS = { configError: null, clusterError: null, tlsReloads: 0, tlsFailures: 0, loops: LOADED, readiness: readiness(LOADED) }
const ODD_NAME = `odd-<i>&"'name`

function pvc(namespace: string, name: string, options: { labels?: Record<string, string>; ref?: string } = {}) {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace, labels: options.labels ?? { backup: 'hourly' }, creationTimestamp: '2026-03-16T08:00:00Z' },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '1Gi' } },
      ...(options.ref ? { dataSourceRef: { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: options.ref } } : {}),
    },
  }
}

function rd(namespace: string, name: string, image?: string) {
  return {
    apiVersion: 'volsync.backube/v1alpha1',
    kind: 'ReplicationDestination',
    metadata: { name, namespace },
    spec: { kopia: { copyMethod: 'Snapshot' } },
    status: image ? { latestImage: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: image } } : {},
  }
}

const OBJECTS = [
  rd('media', 'jellyfin-dst', 'snap-1'), rd('media', 'sonarr-dst'),
  pvc('media', 'jellyfin', { ref: 'jellyfin-dst' }), pvc('media', 'sonarr'), pvc('media', 'newapp'),
  pvc('media', 'plain', { labels: {} }), pvc('media', 'vs-prime-x', { labels: { backup: 'x', 'app.kubernetes.io/created-by': 'volsync' } }),
]
const ENTRIES = [{ pvc: 'jellyfin', snapshots: 3, newest: '2026-03-15T04:00:00Z' }, { pvc: 'sonarr', snapshots: 1, newest: '2026-03-15T03:00:00Z' }]

t.test('view model: the real pvc-restore decision for every participating PVC', async (t) => {
  const snapshot = snapshotOf({ objects: OBJECTS, sources: [source({ name: 'nas', entries: ENTRIES, ageMs: 3000 })] })
  const view = statusView(snapshot, NOW, EXTRAS)
  t.strictSame(view.pvcs.map((p) => `${p.namespace}/${p.name} ${p.decision.outcome} rd=${p.destination.state} missed=${p.missedRestore}`), [
    'media/jellyfin restore rd=ready missed=false',
    'media/newapp fresh rd=missing missed=false',
    'media/sonarr wait rd=not-ready missed=true',
  ], 'non-participating and VolSync-owned PVCs are left out')
  const [jellyfin, newapp, sonarr] = view.pvcs
  t.strictSame(jellyfin?.backup, { state: 'backup', source: 'nas', kind: 'static', snapshots: 3, newest: '2026-03-15T04:00:00Z' })
  t.strictSame(jellyfin?.dataSourceRef, { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'jellyfin-dst' })
  t.strictSame(newapp?.backup, { state: 'none' })
  t.match(sonarr?.decision, { reason: /exists for media\/sonarr; ReplicationDestination sonarr-dst has no latestImage yet/, warning: /waiting for/, denial: null })
  t.strictSame(view.summary, { ready: true, pending: [], warnings: ['1 PVC started empty although a backup exists'] })
  t.match(view.sources, [{ name: 'nas', ok: true, stale: false, lastSuccessAgeSeconds: 3 }])

  const doc = statusDocument(snapshot, NOW, EXTRAS)
  t.strictSame(doc.pvcs, view.pvcs, 'the JSON document carries the view')
  t.equal(doc.catalog.sources[0]?.entries.length, 2, 'sources keep their entries (existing JSON field)')
})

t.test('view model: an unknown catalog, deny, watches and the pending summary', async (t) => {
  const base = snapshotOf({
    config: 'pvc: { whenCatalogUnknown: deny }',
    objects: OBJECTS,
    sources: [source({ name: 'nas', entries: ENTRIES }), source({ name: 'broken', ageMs: null, error: 'boom' })],
  })
  const snapshot: Snapshot = {
    ...base,
    cluster: { ...base.cluster, watches: [{ resource: 'persistentvolumeclaims', lastList: NOW - 60_000, lastEvent: null, restarts: 2, error: 'watch expired' }] },
  }
  // The catalog has not loaded (broken never answered); the cluster is loaded but its watch fails; a reload was rejected.
  const loops: LoopHealth[] = [
    { name: 'cluster', loaded: true, gatesReadiness: true, error: 'persistentvolumeclaims: watch expired', lastSuccess: null },
    { name: 'catalog', loaded: false, gatesReadiness: true, error: 'source broken: boom', lastSuccess: null, waitingFor: 'first catalog poll not finished' },
    { name: 'config', loaded: true, gatesReadiness: false, error: 'reload rejected: bad yaml', lastSuccess: null },
  ]
  const view = statusView(snapshot, NOW, { ...EXTRAS, configError: 'bad yaml', tlsFailures: 1, loops, readiness: readiness(loops) })
  const newapp = view.pvcs.find((p) => p.name === 'newapp')
  t.match(newapp, { backup: { state: 'unknown', reason: /broken \(never polled successfully\)/ }, decision: { outcome: 'deny', denial: /cannot tell whether a backup exists/ } })
  t.equal(view.pvcs.find((p) => p.name === 'sonarr')?.decision.outcome, 'wait', 'a backup in a fresh source still counts')
  t.strictSame(view.watches, [{ resource: 'persistentvolumeclaims', lastListAgeSeconds: 60, lastEventAgeSeconds: null, restarts: 2, error: 'watch expired' }])
  t.equal(view.summary.ready, false)
  t.strictSame(view.summary.pending, ['catalog: first catalog poll not finished (source broken: boom)'], 'pending is what /readyz waits for, word for word')
  t.strictSame(view.summary.warnings, [
    'cluster: persistentvolumeclaims: watch expired',
    'config: reload rejected: bad yaml',
    'catalog source broken is not current: its backups count as unknown (boom)',
    '1 PVC started empty although a backup exists',
  ])
})

t.test('page: every dynamic string is escaped', async (t) => {
  const snapshot = snapshotOf({
    objects: [...OBJECTS, pvc('media', ODD_NAME)],
    sources: [source({ name: 'nas', entries: ENTRIES, error: '<script>alert(1)</script>' })],
  })
  const page = renderStatusPage(statusDocument(snapshot, NOW, { ...EXTRAS, configError: '<img src=x onerror=alert(2)>' }))
  t.notMatch(page, /<script/i, 'no script element')
  t.notMatch(page, /<img/i, 'no img element')
  t.notMatch(page, /<i>/, 'the PVC name does not open an element')
  t.match(page, '&lt;script&gt;alert(1)&lt;/script&gt;', 'the error message is text')
  t.match(page, '&lt;img src=x onerror=alert(2)&gt;')
  t.match(page, `media/${escapeHtml(ODD_NAME)}`)
  t.match(page, 'odd-&lt;i&gt;&amp;&quot;&#39;name')
  t.match(page, /<tr class="pvc restore" data-pvc="media\/jellyfin">/)
  t.match(page, /<tr class="pvc wait" data-pvc="media\/sonarr">/)
  t.match(page, /<tr class="pvc fresh" data-pvc="media\/newapp">/)
})

t.test('page: times as ages with the RFC 3339 time on hover, and a refresh without script', async (t) => {
  const snapshot = snapshotOf({ objects: OBJECTS, sources: [source({ name: 'nas', entries: ENTRIES, ageMs: 5 * 60_000 })] })
  const page = renderStatusPage(statusDocument(snapshot, NOW, EXTRAS))
  t.match(page, /<head>[\s\S]*<meta http-equiv="refresh" content="10">[\s\S]*<\/head>/, 'reloads itself every 10 s')
  t.notMatch(page, /<script/i, 'with no script')
  // NOW is 2026-03-16T09:00:00Z; jellyfin's newest snapshot 2026-03-15T04:00:00Z is 29 h old.
  const jellyfin = elementAt(page, '<tr class="pvc restore" data-pvc="media/jellyfin">', 'tr') ?? ''
  t.match(jellyfin, '3 snapshots, newest <time datetime="2026-03-15T04:00:00Z" title="2026-03-15T04:00:00Z">29 h ago</time>')
  t.notMatch(textOf(jellyfin), /2026-03-15/, 'the timestamp is not in the text, only on hover')
  const nas = elementAt(page, '<tr class="source" data-source="nas">', 'tr') ?? ''
  t.match(nas, '<time datetime="2026-03-16T08:55:00Z" title="2026-03-16T08:55:00Z">5 min ago</time>', 'last success: an age, its time on hover')
  const never = renderStatusPage(statusDocument(snapshotOf({ objects: OBJECTS, sources: [source({ name: 'nas', ageMs: null, error: 'boom' })] }), NOW, EXTRAS))
  t.match(textOf(elementAt(never, '<tr class="source" data-source="nas">', 'tr') ?? ''), /^nas static (stale|error) never /, 'never: no time to hover')
})

t.test('content negotiation and ages', async (t) => {
  const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'
  t.equal(wantsHtml(BROWSER, undefined), true, 'a browser')
  t.equal(wantsHtml('text/*', undefined), true)
  t.equal(wantsHtml('application/json', undefined), false)
  t.equal(wantsHtml('application/json, text/plain, */*', undefined), false, 'axios')
  t.equal(wantsHtml('*/*', undefined), false, 'curl, as README shows it')
  t.equal(wantsHtml(undefined, undefined), false, 'no Accept: scripts that always got JSON')
  t.equal(wantsHtml('text/html;q=0.5, application/json', undefined), false)
  t.equal(wantsHtml('text/html, application/json;q=0.5', undefined), true)
  t.equal(wantsHtml('text/html;q=0', undefined), false)
  t.equal(wantsHtml(BROWSER, 'json'), false, '?format=json wins')
  t.equal(wantsHtml('application/json', 'html'), true, '?format=html wins')
  t.strictSame([null, 0, 3, 119, 120, 7199, 7200, 172_799, 172_800, -5].map(formatAge), [
    'never', '0 s ago', '3 s ago', '119 s ago', '2 min ago', '120 min ago', '2 h ago', '48 h ago', '2 d ago', '0 s ago',
  ])
})

// ---- a real runtime, asked as a script and rendered by chromium ----

const certs: TestCertificates = await makeCertificates(await tempDir(t, 'status-certs'))

/** examples/state plus participating PVCs: restored, missed restore, empty backup repo, new, odd name. */
async function stateDir(tt: Teardown): Promise<string> {
  const dir = await tempDir(tt, 'status-state')
  for (const file of await readdir(EXAMPLE_STATE)) await copyFile(join(EXAMPLE_STATE, file), join(dir, file))
  const pvcs = [
    pvc('media', 'jellyfin', { ref: 'jellyfin-dst' }), pvc('media', 'sonarr'), pvc('media', 'bazarr'), pvc('home', 'new-app'),
    pvc('media', ODD_NAME), pvc('media', 'not-participating', { labels: {} }),
  ]
  await writeFile(join(dir, 'pvcs.yaml'), pvcs.map((o) => JSON.stringify(o)).join('\n---\n'))
  return dir
}

async function serve(tt: Teardown, overrides: Record<string, unknown> = {}) {
  const yaml = await exampleConfigYaml({ certs, stateDir: await stateDir(tt), overrides })
  const runtime = await startTestRuntime(tt, { yaml })
  const client = new WebhookClient(runtime.webhookUrl, { ca: certs.ca })
  tt.teardown(() => client.close())
  await waitReady(client)
  await catalogExact(runtime)
  return runtime
}

/**
 * Ready comes from the repositories' listing; their exact times (which the missed-restore check compares
 * creation times with: a checkout's files are newer than the snapshots in them) follow in the background.
 */
async function catalogExact(runtime: { readonly store: { readonly current: Snapshot } }): Promise<void> {
  while (runtime.store.current.catalog.sources.some((s) => s.entries.some((e) => e.exact === false))) await new Promise((resolve) => setTimeout(resolve, 20))
}

interface Row { readonly decision: string; readonly pvc: string; readonly text: string }

function pvcRows(dom: string): Row[] {
  return [...dom.matchAll(/<tr class="pvc ([a-z]+)" data-pvc="([^"]*)">([\s\S]*?)<\/tr>/g)]
    .map((m) => ({ decision: m[1] ?? '', pvc: decodeEntities(m[2] ?? ''), text: textOf(m[3] ?? '') }))
}

const NAS = { name: 'nas', type: 's3-prefix', filesystem: { path: join(EXAMPLES, 'repos') }, resticPasswordFile: join(EXAMPLES, 'restic-password') }
const CHROMIUM_SKIP = chromiumSkipReason()
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8'

t.test('a running server: JSON for scripts, HTML for people', async (t) => {
  const runtime = await serve(t)
  const url = `${runtime.metricsUrl}/status`

  await t.test('JSON: Accept: application/json, ?format=json, no Accept, curl', async (t) => {
    for (const [what, target, headers] of [
      ['Accept: application/json', url, { accept: 'application/json' }],
      ['?format=json', `${url}?format=json`, { accept: BROWSER_ACCEPT }],
      ['curl', url, { accept: '*/*' }],
    ] as const) {
      const res = await fetch(target, { headers })
      t.equal(res.status, 200, what)
      t.match(res.headers.get('content-type'), /^application\/json/, what)
      t.equal(res.headers.get('cache-control'), 'no-store', what)
      const doc = await res.json() as { mode: string; pvcs: { namespace: string; name: string; decision: { outcome: string }; missedRestore: boolean }[]; summary: { ready: boolean } }
      t.equal(doc.mode, 'enforce', `${what}: the existing fields stay`)
      t.strictSame(doc.pvcs.map((p) => `${p.namespace}/${p.name} ${p.decision.outcome}${p.missedRestore ? ' missed' : ''}`), [
        'home/new-app fresh', 'media/bazarr fresh', 'media/jellyfin restore', `media/${ODD_NAME} fresh`, 'media/sonarr wait missed',
      ], `${what}: the new pvcs array`)
      t.equal(doc.summary.ready, true)
    }
    // fetch always sends an Accept header; node:http sends none, like the scripts /status always served.
    const bare = await httpGet(url)
    t.match(bare.contentType, /^application\/json/, 'no Accept header: JSON')
    t.equal((JSON.parse(bare.text) as { pvcs: unknown[] }).pvcs.length, 5)
  })

  await t.test('HTML for browsers, or ?format=html', async (t) => {
    for (const [target, accept] of [[url, BROWSER_ACCEPT], [`${url}?format=html`, '*/*']] as const) {
      const res = await fetch(target, { headers: { accept } })
      t.equal(res.headers.get('content-type'), 'text/html; charset=utf-8', `${target} Accept ${accept}`)
      t.equal(res.headers.get('cache-control'), 'no-store')
      t.match(await res.text(), /^<!doctype html>/)
    }
  })

  await t.test('chromium renders the page', { skip: CHROMIUM_SKIP }, async (t) => {
    const dom = await dumpDom(url)
    t.match(dom, /<title>volsync-autorestore status<\/title>/)
    t.equal(textOf(elementAt(dom, '<p class="summary', 'p') ?? ''), 'Ready')
    t.strictSame(pvcRows(dom).map((r) => `${r.pvc} ${r.decision}`), [
      'home/new-app fresh', 'media/bazarr fresh', 'media/jellyfin restore', `media/${ODD_NAME} fresh`, 'media/sonarr wait',
    ], 'one row per participating PVC, classed by decision')
    const row = (name: string) => pvcRows(dom).find((r) => r.pvc === name)?.text ?? ''
    t.match(row('media/jellyfin'), /restore .*restic in nas: 3 snapshots, newest .*jellyfin-dst ready volsync-jellyfin-dst-dest-20260316081130 no ReplicationSource ReplicationDestination\/jellyfin-dst/)
    t.match(row('media/sonarr'), /wait .*in nas: 1 snapshot.*sonarr-dst not ready no ReplicationSource none$/)
    t.match(row('media/bazarr'), /fresh .*new volume none bazarr-dst missing no ReplicationSource none$/, 'an empty repository is no backup')
    t.match(row(`media/${ODD_NAME}`), `media/${ODD_NAME}`, 'the odd name shows as text')
    t.notMatch(dom, /<i>/, 'and opens no element')

    const missed = textOf(elementAt(dom, '<section id="missed-restores"', 'section') ?? '')
    t.match(missed, /^Missed restores media\/sonarr has no dataSourceRef although a backup exists \( ?restic in nas: 1 snapshot, newest \d+ d ago ?\): it started empty$/)
    t.notMatch(missed, /jellyfin/)

    const sources = [...dom.matchAll(/<tr class="source" data-source="([^"]*)">([\s\S]*?)<\/tr>/g)].map((m) => textOf(m[2] ?? ''))
    t.equal(sources.length, 1)
    t.match(sources[0], /^nas s3-prefix ok \d+ s ago \d+ s ago 2$/)
    const timed = ['<section id="pvcs"', '<section id="missed-restores"', '<section id="sources"'].map((open) => elementAt(dom, open, 'section') ?? '').join('')
    const hovers = [...timed.matchAll(/<time datetime="([^"]+)" title="([^"]+)">([^<]*)<\/time>/g)]
    t.ok(hovers.length >= 4, `ages carry their time (${hovers.length} <time> elements)`)
    for (const [, datetime, title, age] of hovers) {
      t.equal(title, datetime, 'the title is the time')
      t.match(title, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'RFC 3339')
      t.match(age, /^\d+ (s|min|h|d) ago$/)
    }
    t.match(dom, /<meta http-equiv="refresh" content="10">/, 'the page reloads itself')
    t.equal(textOf(elementAt(dom, '<section id="diagnostics"', 'section') ?? ''), 'Diagnostics none')
    t.match(textOf(elementAt(dom, '<section id="watches"', 'section') ?? ''), /no watches \(state from directory /)
    t.match(textOf(elementAt(dom, '<section id="server"', 'section') ?? ''), /Config reload error: none Serving certificate: valid ?, expires \S+ \(in \d+ d\); names .*localhost; [0-9A-F:]+ TLS certificate reloads: 0, failed: 0/)

    const png = await screenshot(url, { width: 1200, height: 900 })
    t.ok(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'a PNG')
    t.strictSame([png.readUInt32BE(16), png.readUInt32BE(20)], [1200, 900], 'of the window size')
    t.ok(png.length > 5000, `with content (${png.length} bytes)`)
  })
})

t.test('the embedded default (examples/state as shipped) shows restore, wait, fresh and a missed restore', async (t) => {
  const runtime = await startTestRuntime(t, { yaml: await exampleConfigYaml({ certs }) })
  const client = new WebhookClient(runtime.webhookUrl, { ca: certs.ca })
  t.teardown(() => client.close())
  await waitReady(client)
  await catalogExact(runtime)
  const url = `${runtime.metricsUrl}/status`
  const doc = await (await fetch(url, { headers: { accept: 'application/json' } })).json() as { pvcs: { namespace: string; name: string; decision: { outcome: string }; missedRestore: boolean }[]; summary: { ready: boolean; warnings: string[] } }
  t.strictSame(doc.pvcs.map((p) => `${p.namespace}/${p.name} ${p.decision.outcome}${p.missedRestore ? ' missed' : ''}`), [
    'home/paperless fresh', 'media/bazarr fresh', 'media/jellyfin restore', 'media/sonarr wait missed',
  ], 'media/scratch has no backup label: left out')
  t.equal(doc.summary.ready, true)
  t.strictSame(doc.summary.warnings, ['1 PVC started empty although a backup exists'])

  await t.test('in chromium', { skip: CHROMIUM_SKIP }, async (t) => {
    const dom = await dumpDom(url)
    t.strictSame(pvcRows(dom).map((r) => `${r.pvc} ${r.decision}`), ['home/paperless fresh', 'media/bazarr fresh', 'media/jellyfin restore', 'media/sonarr wait'])
    t.match(pvcRows(dom).find((r) => r.pvc === 'media/jellyfin')?.text, /restore .*restic in nas: 3 snapshots, newest \d+ d ago .*ReplicationDestination\/jellyfin-dst$/)
    t.match(textOf(elementAt(dom, '<section id="missed-restores"', 'section') ?? ''), /^Missed restores media\/sonarr has no dataSourceRef although a backup exists/)
    t.match(textOf(elementAt(dom, '<p class="summary attention"', 'p') ?? ''), 'Attention: 1 PVC started empty although a backup exists')
  })
})

t.test('a failing source: its <script> error renders as text; an unknown catalog denies', async (t) => {
  const dir = await tempDir(t, 'status-broken')
  const payload = '<script>document.body.dataset.pwned=1</script>'
  const runtime = await serve(t, {
    pvc: { whenCatalogUnknown: 'deny' },
    catalog: { sources: [NAS, { name: 'broken', type: 'restic', filesystem: { path: join(dir, 'missing') }, passwordFile: join(dir, payload) }] },
  })
  const url = `${runtime.metricsUrl}/status`
  const json = await (await fetch(url, { headers: { accept: 'application/json' } })).json() as { catalog: { sources: { name: string; error: string | null }[] } }
  t.match(json.catalog.sources.find((s) => s.name === 'broken')?.error, `cannot read passwordFile ${join(dir, payload)}: ENOENT`)

  const page = await (await fetch(url, { headers: { accept: BROWSER_ACCEPT } })).text()
  t.notMatch(page, /<script/i, 'the server sends no script element')

  await t.test('in chromium', { skip: CHROMIUM_SKIP }, async (t) => {
    const dom = await dumpDom(url)
    t.notMatch(dom, /<script/i, 'no script element in the DOM')
    t.notMatch(dom, /data-pwned/, 'and nothing ran')
    const broken = [...dom.matchAll(/<tr class="source" data-source="broken">([\s\S]*?)<\/tr>/g)].map((m) => textOf(m[1] ?? ''))
    t.match(broken[0], `broken restic stale never`)
    t.match(broken[0], `${payload}: ENOENT`, 'the error message, markup and all, is text')
    // Ready (every source was polled once, as /readyz says), with the failing source as the first thing to look at.
    t.equal(textOf(elementAt(dom, '<p class="summary', 'p') ?? ''), 'Ready')
    t.match(textOf(elementAt(dom, '<p class="summary attention"', 'p') ?? ''), `Attention: catalog: source broken: cannot read passwordFile ${join(dir, payload)}: ENOENT`)
    t.strictSame(pvcRows(dom).map((r) => `${r.pvc} ${r.decision}`), [
      'home/new-app deny', 'media/bazarr deny', 'media/jellyfin restore', `media/${ODD_NAME} deny`, 'media/sonarr wait',
    ])
    t.match(pvcRows(dom).find((r) => r.pvc === 'home/new-app')?.text, /deny cannot tell whether a backup exists .* unknown catalog source broken \(never polled successfully\) is not current/)
  })
})

t.test('view model: a PVC whose backups are filed under a label (pvc.backupName) shows that backup', async (t) => {
  const snapshot = snapshotOf({
    config: 'pvc: { backupName: \'{{label "app.kubernetes.io/instance"}}\' }',
    objects: [pvc('media', 'config-jellyfin', { labels: { backup: 'hourly', 'app.kubernetes.io/instance': 'jellyfin' } }), pvc('media', 'unlabelled')],
    sources: [source({ name: 'nas', entries: ENTRIES })],
  })
  const view = statusView(snapshot, NOW, EXTRAS)
  t.match(view.pvcs.find((p) => p.name === 'config-jellyfin')?.backup, { state: 'backup', source: 'nas', snapshots: 3 }, 'found under the label value, as admission finds it')
  t.match(view.pvcs.find((p) => p.name === 'unlabelled')?.backup, { state: 'unknown', reason: /needs label "app.kubernetes.io\/instance"/ })
})
