// /status for people: one server-rendered HTML page, inline CSS, no script, no external asset; it
// reloads itself (a meta refresh), so an open tab follows the server without any script.
// Every value goes through the `html` tag, which escapes it: names and error messages come from
// the cluster, repositories and config files, and may contain markup.
import type { CatalogDiagnostic } from '../state/catalog-state.ts'
import type { StatusDocument } from './status.ts'
import type { BackupHealthView, BackupView, DestinationView, PvcView } from './status-view.ts'

/** Markup that is already escaped. Only `html` makes one, so raw strings cannot slip through. */
class Html {
  readonly text: string
  constructor(text: string) {
    this.text = text
  }
}

type HtmlValue = Html | string | number | null | readonly Html[]

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** `text` with & < > " ' as entities, safe both as element text and inside a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c)
}

function piece(value: HtmlValue): string {
  if (value === null) return ''
  if (value instanceof Html) return value.text
  if (Array.isArray(value)) return value.map((v: Html) => v.text).join('')
  return escapeHtml(String(value))
}

function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0] ?? ''
  values.forEach((value, i) => {
    out += piece(value) + (strings[i + 1] ?? '')
  })
  return new Html(out)
}

/** "3 s ago", "4 min ago", "2 h ago", "5 d ago"; "never" before the first time. */
export function formatAge(seconds: number | null): string {
  if (seconds === null) return 'never'
  const s = Math.max(0, seconds)
  if (s < 120) return `${s} s ago`
  if (s < 120 * 60) return `${Math.round(s / 60)} min ago`
  if (s < 48 * 3600) return `${Math.round(s / 3600)} h ago`
  return `${Math.round(s / 86400)} d ago`
}

/** How often an open page reloads itself, in seconds. */
export const REFRESH_SECONDS = 10

/** An RFC 3339 time in whole seconds (ages are whole seconds, so milliseconds would be invented). */
const rfc3339 = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')

/** `seconds` before `now` (epoch ms) as an age, with the RFC 3339 time on hover; "never" for null. */
function ageCell(seconds: number | null, now: number): Html {
  if (seconds === null) return html`never`
  const at = rfc3339(now - seconds * 1000)
  return html`<time datetime="${at}" title="${at}">${formatAge(seconds)}</time>`
}

/** A timestamp from a catalog or the cluster as its age at `now` (epoch ms), the timestamp itself on hover. */
function timeCell(timestamp: string, now: number): Html {
  const at = Date.parse(timestamp)
  if (Number.isNaN(at)) return html`${timestamp}`
  return html`<time datetime="${timestamp}" title="${timestamp}">${formatAge(Math.round((now - at) / 1000))}</time>`
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`

/** The CSS class of a decision: the PVC outcomes people act on, and `unknown` for anything else. */
export function decisionClass(outcome: string): 'restore' | 'wait' | 'fresh' | 'deny' | 'unknown' {
  return outcome === 'restore' || outcome === 'wait' || outcome === 'fresh' || outcome === 'deny' ? outcome : 'unknown'
}

/**
 * HTML only for a client that prefers it (a browser lists text/html); JSON for everything else:
 * `Accept: application/json`, no Accept at all and curl's `*\/*`, as /status always answered
 * scripts. `?format=json|html` overrides the header.
 */
export function wantsHtml(accept: string | undefined, format: string | undefined): boolean {
  if (format === 'json') return false
  if (format === 'html') return true
  let json = 0
  let htmlQ = 0
  for (const part of (accept ?? '').split(',')) {
    const [type = '', ...params] = part.split(';').map((p) => p.trim().toLowerCase())
    const qParam = params.find((p) => p.startsWith('q='))
    const q = qParam === undefined ? 1 : Number(qParam.slice(2)) || 0
    if (type === 'application/json') json = Math.max(json, q)
    else if (type === 'text/html' || type === 'text/*') htmlQ = Math.max(htmlQ, q)
  }
  return htmlQ > json
}

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem; color: #1d2329; background: #fafbfc; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; } h2 { font-size: 1.1rem; margin: 1.6rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; background: #fff; } th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #e1e4e8; vertical-align: top; }
th { background: #f0f2f4; font-weight: 600; } .meta, .muted { color: #6a737d; } .reason { color: #6a737d; font-size: .9em; }
.summary { padding: .5rem .8rem; border-radius: 4px; font-weight: 600; } .summary.ready { background: #e6f6ea; } .summary.pending { background: #fde8e6; } .summary.attention { background: #fff4d6; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 3px; font-weight: 600; }
.badge.restore { background: #d4f0dc; } .badge.wait { background: #fff0c2; } .badge.fresh { background: #dde9fb; } .badge.deny { background: #fbd9d6; } .badge.unknown { background: #e6e6e6; }
.ok { color: #1a7f37; } .stale, .error { color: #b42318; } code { font-size: .92em; }
`

function backupCell(backup: BackupView, now: number): Html {
  switch (backup.state) {
    case 'backup': {
      const count = backup.snapshots === null ? 'unknown count' : `${backup.snapshots} snapshot${backup.snapshots === 1 ? '' : 's'}`
      return html`<span class="backup">${backup.kind} in ${backup.source}: ${count}${backup.newest === null ? null : html`, newest ${timeCell(backup.newest, now)}`}</span>`
    }
    case 'none':
      return html`<span class="backup-none muted">none</span>`
    case 'unknown':
      return html`<span class="backup-unknown">unknown</span> <span class="reason">${backup.reason}</span>`
  }
}

function destinationCell(rd: DestinationView): Html {
  const state = rd.state === 'ready' ? html`<span class="ok">ready</span> <span class="reason">${rd.latestImage?.name ?? ''}</span>`
    : rd.state === 'missing' ? html`<span class="muted">missing</span>`
    : html`<span class="stale">not ready</span>${rd.latestImage ? html` <span class="reason">latestImage is a ${rd.latestImage.kind}</span>` : null}`
  return html`<code>${rd.name}</code> ${state}`
}

/** The PVC's ReplicationSource: last successful backup as an age, the last mover result, the next sync, overdue and paused flags. */
function backupHealthCell(health: BackupHealthView | null, now: number): Html {
  if (health === null) return html`<span class="muted">no ReplicationSource</span>`
  const last = health.lastSuccess === null ? html`<span class="muted">never</span>` : timeCell(health.lastSuccess, now)
  const result = health.lastResult === null ? null
    : html`, last run <span class="${health.lastResult === 'Successful' ? 'ok' : 'error'}">${health.lastResult}</span>`
  const next = health.nextSync === null || health.nextSyncInSeconds === null ? null
    : html`<div class="reason">next <time datetime="${health.nextSync}" title="${health.nextSync}">${health.nextSyncInSeconds >= 0 ? `in ${formatDuration(health.nextSyncInSeconds)}` : `${formatDuration(-health.nextSyncInSeconds)} late`}</time>${health.schedule === null ? null : html` (<code>${health.schedule}</code>)`}</div>`
  const overdue = health.overdue ? html`<div class="backup-overdue error"><strong>backup overdue:</strong> no successful sync within twice the schedule's period${health.periodSeconds === null ? null : html` (${formatDuration(health.periodSeconds)})`}</div>` : null
  const paused = health.paused ? html` <span class="stale">paused</span>` : null
  return html`<code>${health.source}</code>${paused}<div>last success ${last}${result}</div>${next}${overdue}`
}

/** The "can never be restored as it stands" flag of a PVC row, with why and the fix; nothing when it can be. */
function neverRestorableNote(pvc: PvcView): Html | null {
  return pvc.neverRestorable === null ? null : html`<div class="never-restorable error"><strong>can never be restored as it stands:</strong> ${pvc.neverRestorable}</div>`
}

function pvcRow(pvc: PvcView, now: number): Html {
  const kind = decisionClass(pvc.decision.outcome)
  const ref = pvc.dataSourceRef === null ? html`<span class="muted">none</span>` : html`<code>${pvc.dataSourceRef.kind}/${pvc.dataSourceRef.name}</code>`
  return html`<tr class="pvc ${kind}" data-pvc="${pvc.namespace}/${pvc.name}">
<td><code>${pvc.namespace}/${pvc.name}</code></td>
<td><span class="badge ${kind}">${pvc.decision.outcome}</span><div class="reason">${pvc.decision.denial ?? pvc.decision.reason}</div>${neverRestorableNote(pvc)}</td>
<td>${backupCell(pvc.backup, now)}</td>
<td>${destinationCell(pvc.destination)}</td>
<td class="backup-health">${backupHealthCell(pvc.backupHealth, now)}</td>
<td>${ref}</td>
</tr>`
}

function pvcSection(pvcs: readonly PvcView[], now: number): Html {
  const body = pvcs.length === 0
    ? html`<p class="muted">no participating PVC is known</p>`
    : html`<table><thead><tr><th>PVC</th><th>Decision if created now</th><th>Backup (catalog)</th><th>ReplicationDestination</th><th>Backups (ReplicationSource)</th><th>dataSourceRef</th></tr></thead>
<tbody>${pvcs.map((pvc) => pvcRow(pvc, now))}</tbody></table>`
  return html`<section id="pvcs"><h2>PVCs</h2>${body}</section>`
}

function missedSection(pvcs: readonly PvcView[], now: number): Html {
  const missed = pvcs.filter((p) => p.missedRestore)
  const body = missed.length === 0
    ? html`<p class="none">none</p>`
    : html`<ul>${missed.map((p) => html`<li class="missed"><code>${p.namespace}/${p.name}</code> has no dataSourceRef although a backup exists (${backupCell(p.backup, now)}): it started empty</li>`)}</ul>`
  return html`<section id="missed-restores"><h2>Missed restores</h2>${body}</section>`
}

function sourcesSection(doc: StatusDocument, now: number): Html {
  const rows = doc.catalog.sources.map((s) => {
    const health = s.ok && !s.stale ? html`<span class="ok">ok</span>` : s.stale ? html`<span class="stale">stale</span>` : html`<span class="error">error</span>`
    return html`<tr class="source" data-source="${s.name}"><td><code>${s.name}</code></td><td>${s.type}</td><td>${health}</td>
<td>${ageCell(s.lastSuccessAgeSeconds, now)}</td><td>${ageCell(s.lastAttemptAgeSeconds, now)}</td><td>${s.entries.length}</td><td class="error">${s.error}</td></tr>`
  })
  const body = rows.length === 0
    ? html`<p class="muted">no catalog source is configured</p>`
    : html`<table><thead><tr><th>Source</th><th>Type</th><th>Health</th><th>Last success</th><th>Last attempt</th><th>PVCs</th><th>Error</th></tr></thead><tbody>${rows}</tbody></table>`
  return html`<section id="sources"><h2>Catalog sources</h2><p class="meta">stale after ${doc.catalog.staleAfter}</p>${body}</section>`
}

function diagnosticItem(source: string, d: CatalogDiagnostic): Html {
  const pvc = d.namespace !== undefined ? html` <code>${d.namespace}/${d.pvc ?? ''}</code>` : null
  return html`<li class="diagnostic"><code>${d.code}</code> in ${source}${pvc} at <code>${d.location}</code>: ${d.message}</li>`
}

function diagnosticsSection(doc: StatusDocument): Html {
  const items = doc.catalog.sources.flatMap((s) => s.diagnostics.map((d) => diagnosticItem(s.name, d)))
  return html`<section id="diagnostics"><h2>Diagnostics</h2>${items.length === 0 ? html`<p class="none">none</p>` : html`<ul>${items}</ul>`}</section>`
}

function watchesSection(doc: StatusDocument, now: number): Html {
  const { cluster } = doc
  const rows = cluster.watches.map((w) => html`<tr class="watch"><td>${w.resource}</td><td>${ageCell(w.lastListAgeSeconds, now)}</td>
<td>${ageCell(w.lastEventAgeSeconds, now)}</td><td>${w.restarts}</td><td class="error">${w.error}</td></tr>`)
  const body = rows.length === 0
    ? html`<p class="muted">no watches (state from ${cluster.origin})</p>`
    : html`<table><thead><tr><th>Resource</th><th>Last list</th><th>Last event</th><th>Restarts</th><th>Error</th></tr></thead><tbody>${rows}</tbody></table>`
  const error = cluster.lastError === null ? null : html`<p class="error">${cluster.lastError}</p>`
  return html`<section id="watches"><h2>Cluster</h2><p class="meta">${cluster.origin}; ${cluster.synced ? 'synced' : 'not synced'}; ${plural(cluster.namespaces.length, 'namespace')}, ${plural(cluster.replicationDestinations.length, 'ReplicationDestination')}</p>${error}${body}</section>`
}

function serverSection(doc: StatusDocument): Html {
  const config = doc.config.lastReloadError === null ? html`<span class="ok">none</span>` : html`<span class="error">${doc.config.lastReloadError}</span>`
  return html`<section id="server"><h2>Server</h2><ul>
<li>Config reload error: ${config}</li>
${tlsItems(doc)}</ul></section>`
}

/** The served certificate (expiry as a date and a countdown, names, fingerprint), its problem, and the last refused reload. */
function tlsItems(doc: StatusDocument): Html {
  const { tls } = doc
  const cert = tls.certificate
  const served = cert === null
    ? html`<li class="tls-certificate muted">no certificate served yet</li>`
    : html`<li class="tls-certificate">Serving certificate: ${cert.problem === null ? html`<span class="ok">valid</span>` : html`<span class="error">${cert.problem}</span>`}, expires <time datetime="${cert.notAfter}" title="${cert.notAfter}">${cert.notAfter}</time> (${cert.expiresInSeconds > 0 ? `in ${formatDuration(cert.expiresInSeconds)}` : `${formatDuration(-cert.expiresInSeconds)} ago`}); names ${cert.dnsNames.join(', ') || '(none)'}; <code>${cert.fingerprint256}</code></li>`
  const refused = tls.lastReloadError === null ? null : html`<li class="tls-refused error">Refused a new certificate (still serving the previous one): ${tls.lastReloadError}</li>`
  return html`${served}${refused}<li class="tls">TLS certificate reloads: ${tls.reloads}, failed: ${tls.failures}</li>`
}

/** A span of `seconds` in the largest unit that keeps it readable: "45 s", "12 min", "5 h", "80 d". */
function formatDuration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`
  if (seconds < 120 * 60) return `${Math.round(seconds / 60)} min`
  if (seconds < 48 * 3600) return `${Math.round(seconds / 3600)} h`
  return `${Math.round(seconds / 86400)} d`
}

function summaryLine(doc: StatusDocument): Html {
  const { summary } = doc
  const text = summary.ready ? 'Ready' : `Not ready: ${summary.pending.join('; ')}`
  const warnings = summary.warnings.length === 0 ? null : html`<p class="summary attention" id="warnings">Attention: ${summary.warnings.join('; ')}</p>`
  return html`<p class="summary ${summary.ready ? 'ready' : 'pending'}" id="summary">${text}</p>${warnings}`
}

/**
 * The /status document as one self-contained HTML page (inline style, no script, a meta refresh every
 * REFRESH_SECONDS), every value escaped. Times show as ages at the document's generatedAt ("3 h ago"),
 * the RFC 3339 time in a `<time>` element's datetime and title (on hover). Pure.
 */
export function renderStatusPage(doc: StatusDocument): string {
  const now = Date.parse(doc.generatedAt)
  return `<!doctype html>\n${html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="${REFRESH_SECONDS}">
<title>volsync-autorestore status</title><style>${new Html(STYLE)}</style></head>
<body><h1>volsync-autorestore status</h1>
<p class="meta">mode ${doc.mode} · generation ${doc.generation} · <time datetime="${doc.generatedAt}">${doc.generatedAt}</time> · refreshes every ${REFRESH_SECONDS} s · <a href="?format=json">JSON</a></p>
${summaryLine(doc)}
${pvcSection(doc.pvcs, now)}
${missedSection(doc.pvcs, now)}
${sourcesSection(doc, now)}
${diagnosticsSection(doc)}
${watchesSection(doc, now)}
${serverSection(doc)}
</body></html>`.text}\n`
}
