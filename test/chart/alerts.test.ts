// Issue 11 item 4: the chart's alerts (files/prometheus-rules.yaml) and Grafana dashboard
// (files/dashboard.json). `promtool check rules` and `promtool test rules` (the cases in
// test/chart/alerts/prometheus-rules.test.yaml: every alert fires on its input and stays quiet on a
// healthy twin) run where promtool is installed (Debian `prometheus`; .ci/run installs it) and skip,
// saying so, elsewhere. Every metric name in the alerts and the dashboard is one a running server
// exports (its /metrics scraped in-process), and the chart renders both files unchanged.
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parse, stringify } from 'yaml'
import { exampleConfigYaml, httpGet, makeCertificates, startTestRuntime, tempDir } from '../support/live-webhook.ts'
import { CHART_DIR, helmTemplate, ROOT } from './helm.ts'
import { validateObject } from './models.ts'
import { exposedNames, metricNamesIn } from './promql-names.ts'

const RULES_FILE = join(CHART_DIR, 'files/prometheus-rules.yaml')
const DASHBOARD_FILE = join(CHART_DIR, 'files/dashboard.json')
const RULE_TESTS_FILE = join(ROOT, 'test/chart/alerts/prometheus-rules.test.yaml')

interface Rule { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
interface RuleFile { groups: { name: string; rules: Rule[] }[] }
interface RuleTests { rule_files: string[]; tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[] }
interface Target { expr?: string; refId: string }
interface Panel { id: number; type: string; title: string; datasource?: { uid: string }; targets?: Target[] }
interface Dashboard { uid: string; panels: Panel[]; templating: { list: { name: string; type: string; query?: unknown; definition?: string }[] } }

const rules = parse(readFileSync(RULES_FILE, 'utf8')) as RuleFile
const alerts = rules.groups.flatMap((g) => g.rules).filter((r): r is Rule & { alert: string } => r.alert !== undefined)
const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard
const ruleTests = parse(readFileSync(RULE_TESTS_FILE, 'utf8')) as RuleTests

/** Every PromQL expression of the dashboard: panel targets and the templating variables' queries. */
function dashboardExpressions(d: Dashboard): { where: string; expr: string }[] {
  const found: { where: string; expr: string }[] = []
  for (const panel of d.panels) {
    for (const target of panel.targets ?? []) if (target.expr !== undefined) found.push({ where: `panel "${panel.title}" ${target.refId}`, expr: target.expr })
  }
  for (const variable of d.templating.list) {
    if (variable.type !== 'query') continue
    const query = typeof variable.query === 'string' ? variable.query : (variable.query as { query?: string } | undefined)?.query ?? ''
    // label_values(metric, label) is Grafana's, not PromQL: its first argument is a selector.
    const labelValues = /^label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\)$/.exec(query.trim())
    found.push({ where: `variable $${variable.name}`, expr: labelValues ? labelValues[1]! : query })
  }
  return found
}

const probe = spawnSync('promtool', ['--version'], { encoding: 'utf8' })
const PROMTOOL_SKIP = probe.error ? `promtool is not installed (Debian: apt-get install prometheus): ${probe.error.message}` : false

function promtool(args: string[], cwd?: string): { status: number | null; output: string } {
  const result = spawnSync('promtool', args, { encoding: 'utf8', timeout: 60_000, ...(cwd ? { cwd } : {}) })
  return { status: result.status, output: `${result.stdout}${result.stderr}` }
}

t.test('promtool check rules: the rule file is valid', { skip: PROMTOOL_SKIP }, async (t) => {
  const result = promtool(['check', 'rules', RULES_FILE])
  t.equal(result.status, 0, result.output)
  t.match(result.output, `SUCCESS: ${alerts.length} rules found`)
})

t.test('promtool test rules: every case passes', { skip: PROMTOOL_SKIP }, async (t) => {
  const result = promtool(['test', 'rules', RULE_TESTS_FILE])
  t.equal(result.status, 0, result.output)
  t.match(result.output, 'SUCCESS')
})

t.test('the rule tests read the chart\'s file, and every alert has a firing and a quiet case', async (t) => {
  t.same(ruleTests.rule_files, ['../../../charts/volsync-autorestore/files/prometheus-rules.yaml'])
  const cases = ruleTests.tests.flatMap((test) => test.alert_rule_test ?? [])
  t.ok(alerts.length >= 10, `${alerts.length} alerts`)
  for (const alert of alerts) {
    t.ok(cases.some((c) => c.alertname === alert.alert && c.exp_alerts.length > 0), `${alert.alert}: a case where it fires`)
    t.ok(cases.some((c) => c.alertname === alert.alert && c.exp_alerts.length === 0), `${alert.alert}: a case where it does not`)
    t.match(alert.labels, { severity: /^(critical|warning|info)$/ }, `${alert.alert}: a severity`)
    t.ok(alert.annotations?.summary && alert.annotations.description, `${alert.alert}: a summary and a description`)
  }
  t.same(cases.filter((c) => !alerts.some((a) => a.alert === c.alertname)).map((c) => c.alertname), [], 'no case for an alert that does not exist')
})

t.test('metricNamesIn: what it keeps and what it drops', async (t) => {
  t.same(metricNamesIn('histogram_quantile(0.99, sum without (instance, pod) (rate(a_bucket{job=~"$job",le!="x"}[$__rate_interval]))) > 0.1'), ['a_bucket'])
  t.same(metricNamesIn('min without (instance) (b > 0) - time() < 14 * 86400 and on (job) c offset 5m or vector(0)'), ['b', 'c'])
  t.same(metricNamesIn('sum by (x) (increase(d_total{x="a b{c}"}[10m:1m])) / ignoring (le) group_left (y) e'), ['d_total', 'e'])
  t.throws(() => metricNamesIn('f{x="unterminated}'))
})

t.test('every metric the alerts and the dashboard read is one the server exports', async (t) => {
  const dir = await tempDir(t, 'alerts')
  const certs = await makeCertificates(dir)
  const runtime = await startTestRuntime(t, { yaml: await exampleConfigYaml({ certs }) })
  const scrape = await httpGet(`${runtime.metricsUrl}/metrics`)
  t.equal(scrape.status, 200)
  const exposed = exposedNames(scrape.text)
  t.ok(exposed.has('volsync_autorestore_admission_duration_seconds_bucket'), 'histogram series names are known')

  const used = [
    ...alerts.map((a) => ({ where: `alert ${a.alert}`, expr: a.expr })),
    ...dashboardExpressions(dashboard),
  ]
  t.ok(used.length > alerts.length + 20, `${used.length} expressions`)
  const missing = used.flatMap(({ where, expr }) => metricNamesIn(expr).filter((name) => !exposed.has(name)).map((name) => `${where}: ${name}`))
  t.same(missing, [], 'no expression reads a metric the server does not export')
  const read = new Set(used.flatMap(({ expr }) => metricNamesIn(expr)))
  for (const name of ['volsync_autorestore_missed_restores', 'volsync_autorestore_catalog_last_success_age_seconds', 'volsync_autorestore_watch_last_event_age_seconds', 'volsync_autorestore_tls_certificate_not_after_seconds', 'volsync_autorestore_admission_duration_seconds_bucket', 'volsync_autorestore_prewarm_actions_total', 'volsync_autorestore_kopia_password_checks_total']) {
    t.ok(read.has(name), `${name} is read`)
  }
  // The check can fail: a name the server does not export is reported.
  const typo = metricNamesIn('rate(volsync_autorestore_admission_request_total[5m])').filter((name) => !exposed.has(name))
  t.same(typo, ['volsync_autorestore_admission_request_total'])
})

t.test('the dashboard: one data source variable, unique panel ids, valid PromQL', async (t) => {
  t.equal(dashboard.uid, 'volsync-autorestore')
  const ids = dashboard.panels.map((p) => p.id)
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique')
  t.ok(dashboard.templating.list.some((v) => v.name === 'datasource' && v.type === 'datasource'), 'a data source variable')
  for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
    t.equal(panel.datasource?.uid, '${datasource}', `${panel.title}: queries the chosen data source`)
    t.ok((panel.targets ?? []).length > 0 && panel.targets!.every((target) => target.expr), `${panel.title}: has queries`)
  }
  if (PROMTOOL_SKIP) return
  // promtool parses the panels' expressions as recording rules, with Grafana's variables filled in.
  const dir = await tempDir(t, 'dashboard-rules')
  const recorded = dashboardExpressions(dashboard).map(({ expr }, i) => ({
    record: `dashboard:expr_${i}`,
    expr: expr.replaceAll('$__rate_interval', '5m').replaceAll('$job', '.*'),
  }))
  const file = join(dir, 'dashboard-rules.yaml')
  writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: recorded }] }))
  const result = promtool(['check', 'rules', file])
  t.equal(result.status, 0, result.output)
})

t.test('the chart renders both files unchanged', async (t) => {
  const objects = await helmTemplate({ metrics: { prometheusRule: { enabled: true, labels: { release: 'kube-prometheus-stack' } }, grafanaDashboard: { enabled: true } } })
  const rule = objects.find((o) => o.kind === 'PrometheusRule') as { spec: RuleFile; metadata: { labels?: Record<string, string> } } | undefined
  t.ok(rule, 'a PrometheusRule')
  t.same(rule?.spec.groups, rules.groups, 'its groups are the rule file\'s')
  t.equal(rule?.metadata.labels?.release, 'kube-prometheus-stack')
  await t.resolves(validateObject(rule as never), 'valid against the PrometheusRule schema')
  const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-dashboard')) as { data: Record<string, string> } | undefined
  t.same(JSON.parse(configMap?.data['volsync-autorestore.json'] ?? 'null'), dashboard, 'the ConfigMap holds the dashboard')
})
