// The Helm chart, rendered by real helm (test/chart/helm.ts) for a matrix of values: `helm lint
// --strict`, every object valid against its schema (kubernetes-models), and the chart in sync with
// the code: each webhook equals WEBHOOKS (src/admission/webhooks.ts) and the ClusterRole/Role equal
// rbacRules(permissions(config)) (src/server/permissions.ts) for the config the chart renders, and
// values.schema.json equals what scripts/chart-schema.ts generates from src/config/schema.ts.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { valuesSchemaText, VALUES_SCHEMA_FILE } from '../../scripts/chart-schema.ts'
import { WEBHOOKS, type WebhookEntry } from '../../src/admission/webhooks.ts'
import { durationMs } from '../../src/config/duration.ts'
import { ConfigError, parseConfig } from '../../src/config/load.ts'
import type { Config } from '../../src/config/schema.ts'
import { permissions, rbacRules } from '../../src/server/permissions.ts'
import { HelmError, helmLint, helmTemplate, ROOT, type K8sObject } from './helm.ts'
import { validateObject } from './models.ts'

const NAMESPACE = 'volsync-system'
const FULLNAME = 'vsa-volsync-autorestore'

type Values = Record<string, unknown>
interface WebhookValues { timeoutSeconds: number; excludeNamespaces: string[]; pvc: { failurePolicy: string }; jobs: { failurePolicy: string }; validate: { failurePolicy: string } }

const clusterExample = parse(readFileSync(join(ROOT, 'examples/config-cluster.yaml'), 'utf8')) as Values
const kopiaOnNfs = {
  movers: { repository: { nfs: { server: 'nas.example', path: '/volsync' }, mountPath: '/repository' } },
  catalog: { sources: [{ name: 'nas', type: 'kopia', filesystem: { path: '/repository' }, passwordFile: '/creds/KOPIA_PASSWORD' }] },
}

/** The matrix of issue 11: each case's values, and what it must show beyond the common checks. */
const CASES: Record<string, Values> = {
  defaults: {},
  'tls cert-manager': { tls: { mode: 'cert-manager' } },
  'tls cert-manager with an existing issuer': { tls: { mode: 'cert-manager', certManager: { issuerRef: { name: 'cluster-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' } } } },
  'tls secret': { tls: { mode: 'secret', secret: { name: 'my-webhook-tls', caBundle: Buffer.from('-----BEGIN CERTIFICATE-----\n').toString('base64') } } },
  audit: { config: { mode: 'audit' } },
  'NFS repository read by a kopia source': { credentials: { existingSecret: 'volsync-autorestore-creds' }, config: kopiaOnNfs },
  'PVC repository read by an s3-prefix source': {
    config: {
      movers: { repository: { pvc: { claimName: 'kopia-repository' }, mountPath: '/mnt/repo' } },
      catalog: { sources: [{ name: 'nas', type: 's3-prefix', filesystem: { path: '/mnt/repo/per-pvc' } }] },
    },
  },
  'NFS repository not read by any source': { config: { movers: { repository: { nfs: { server: 'nas.example', path: '/volsync' } } } } },
  'S3 + Kopia sources with credentials.existingSecret (examples/config-cluster.yaml)': { credentials: { existingSecret: 'volsync-autorestore-creds' }, config: clusterExample },
  'rebuild-safe': { webhooks: { pvc: { failurePolicy: 'Fail' }, excludeNamespaces: ['flux-system', 'argocd'], timeoutSeconds: 10 } },
  'every optional object': {
    fullnameOverride: FULLNAME,
    metrics: { serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } }, prometheusRule: { enabled: true }, grafanaDashboard: { enabled: true } },
    networkPolicy: { enabled: true, apiServer: { cidrs: ['10.0.0.1/32'] }, prometheus: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }, s3: { cidrs: ['192.0.2.10/32'] } },
    podDisruptionBudget: { enabled: true, maxUnavailable: 1 },
    topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'volsync-autorestore' } } }],
    priorityClassName: 'system-cluster-critical',
    tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }],
    image: { digest: 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef' },
    credentials: { existingSecret: 'volsync-autorestore-creds' },
    config: {
      ...clusterExample,
      pvc: { selector: { matchLabels: { 'volsync.backup/enabled': 'true' } } },
      prewarm: { enabled: false },
      kube: { leaseName: 'custom-lease' },
      server: { port: 9443, metricsPort: 9091 },
    },
  },
}

const DEFAULT_WEBHOOK_VALUES: WebhookValues = { timeoutSeconds: 5, excludeNamespaces: [], pvc: { failurePolicy: 'Ignore' }, jobs: { failurePolicy: 'Ignore' }, validate: { failurePolicy: 'Ignore' } }

function webhookValues(values: Values): WebhookValues {
  const given = (values.webhooks ?? {}) as Partial<WebhookValues>
  return { ...DEFAULT_WEBHOOK_VALUES, ...given }
}

const find = (objects: readonly K8sObject[], kind: string, name?: string): K8sObject | undefined =>
  objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name))

function must<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`missing: ${what}`)
  return value
}

/** The server's config as the chart rendered it, parsed by the server's own loader. */
function renderedConfig(objects: readonly K8sObject[]): Config {
  const configMap = must(find(objects, 'ConfigMap', FULLNAME), 'the ConfigMap') as K8sObject & { data: Record<string, string> }
  return parseConfig(must(configMap.data['config.yaml'], 'config.yaml'), 'rendered config.yaml')
}

interface RenderedWebhook {
  name: string
  clientConfig: { service: { name: string; namespace: string; path: string; port: number }; caBundle?: string }
  rules: { apiGroups: string[]; apiVersions: string[]; resources: string[]; operations: string[]; scope?: string }[]
  objectSelector?: unknown
  namespaceSelector?: { matchExpressions?: { key: string; operator: string; values?: string[] }[] }
  sideEffects: string
  admissionReviewVersions: string[]
  failurePolicy: string
  timeoutSeconds: number
}

/** What the code says one rendered webhook must be, for this config and these webhook values. */
function expectedWebhook(entry: WebhookEntry, config: Config, values: WebhookValues): Record<string, unknown> {
  const policy = entry.webhook === 'validate' ? values.validate : entry.resources.some((r) => r.resource === 'jobs') ? values.jobs : values.pvc
  const selector = entry.objectSelector(config)
  return {
    name: entry.name,
    path: entry.path,
    rules: entry.resources.map((r) => ({ apiGroups: [r.group], apiVersions: [r.version], resources: [r.resource], operations: [...entry.operations] })),
    ...(selector === undefined ? {} : { objectSelector: selector }),
    sideEffects: 'NoneOnDryRun',
    admissionReviewVersions: ['v1'],
    failurePolicy: policy.failurePolicy,
    timeoutSeconds: values.timeoutSeconds,
  }
}

/** The same fields read from a rendered webhook. */
function renderedWebhook(w: RenderedWebhook): Record<string, unknown> {
  return {
    name: w.name,
    path: w.clientConfig.service.path,
    rules: w.rules.map(({ scope: _scope, ...rule }) => rule),
    ...(w.objectSelector === undefined ? {} : { objectSelector: w.objectSelector }),
    sideEffects: w.sideEffects,
    admissionReviewVersions: w.admissionReviewVersions,
    failurePolicy: w.failurePolicy,
    timeoutSeconds: w.timeoutSeconds,
  }
}

const webhooksOf = (objects: readonly K8sObject[], kind: string): RenderedWebhook[] =>
  (must(find(objects, kind), kind) as K8sObject & { webhooks: RenderedWebhook[] }).webhooks

/** Rendered (mutating then validating) and expected (WEBHOOKS in order, split the same way). */
function webhookComparison(objects: readonly K8sObject[], table: readonly WebhookEntry[], config: Config, values: WebhookValues) {
  return {
    rendered: [...webhooksOf(objects, 'MutatingWebhookConfiguration'), ...webhooksOf(objects, 'ValidatingWebhookConfiguration')].map(renderedWebhook),
    expected: [...table.filter((w) => w.webhook === 'mutate'), ...table.filter((w) => w.webhook === 'validate')].map((w) => expectedWebhook(w, config, values)),
  }
}

function rbacComparison(objects: readonly K8sObject[], config: Config) {
  const rules = (kind: string) => (must(find(objects, kind, FULLNAME), kind) as K8sObject & { rules: unknown[] }).rules
  const role = must(find(objects, 'Role', FULLNAME), 'Role')
  return {
    rendered: { cluster: rules('ClusterRole'), namespaced: { [must(role.metadata.namespace, 'the Role namespace')]: rules('Role') } },
    expected: JSON.parse(JSON.stringify(rbacRules(permissions(config)))) as unknown,
  }
}

const rendered = new Map<string, Promise<K8sObject[]>>()
const render = (name: string, values: Values) => {
  if (!rendered.has(name)) rendered.set(name, helmTemplate({ fullnameOverride: FULLNAME, ...values }, { namespace: NAMESPACE }))
  return must(rendered.get(name), name)
}

// Every render and lint starts now, side by side; each test awaits its own.
const linted = new Map(Object.entries(CASES).map(([name, values]) => {
  render(name, values).catch(() => {})
  const lint = helmLint({ fullnameOverride: FULLNAME, ...values }, { namespace: NAMESPACE })
  lint.catch(() => {})
  return [name, lint]
}))

for (const [name, values] of Object.entries(CASES)) {
  t.test(name, async (t) => {
    const [objects] = await Promise.all([render(name, values), must(linted.get(name), name)])
    t.ok(objects.length >= 10, `${objects.length} objects rendered`)
    for (const object of objects) {
      await t.resolves(validateObject(object), `${object.kind} ${object.metadata.name} is valid against its schema`)
    }

    const config = renderedConfig(objects)
    t.equal(config.kube.namespace, NAMESPACE, 'kube.namespace is the release namespace')
    t.equal(config.state.directory, undefined, 'state from the API server')

    const hooks = webhookComparison(objects, WEBHOOKS, config, webhookValues(values))
    t.same(hooks.rendered, hooks.expected, 'each rendered webhook is the WEBHOOKS entry for the rendered config')
    for (const w of [...webhooksOf(objects, 'MutatingWebhookConfiguration'), ...webhooksOf(objects, 'ValidatingWebhookConfiguration')]) {
      const excluded = w.namespaceSelector?.matchExpressions?.find((e) => e.key === 'kubernetes.io/metadata.name' && e.operator === 'NotIn')?.values ?? []
      t.same([...excluded].sort(), [...new Set(['kube-system', NAMESPACE, ...webhookValues(values).excludeNamespaces])].sort(), `${w.name}: kube-system, the release namespace and webhooks.excludeNamespaces are excluded`)
      t.same(w.clientConfig.service, { name: FULLNAME, namespace: NAMESPACE, path: w.clientConfig.service.path, port: 443 }, `${w.name}: calls the chart's Service`)
    }

    const rbac = rbacComparison(objects, config)
    t.same(rbac.rendered, rbac.expected, 'ClusterRole and Role rules are rbacRules(permissions(config))')

    const deployment = must(find(objects, 'Deployment', FULLNAME), 'Deployment') as K8sObject & { spec: { replicas: number; template: { spec: PodSpec } } }
    const pod = deployment.spec.template.spec
    const container = must(pod.containers[0], 'the container')
    t.equal(deployment.spec.replicas, 2)
    t.match(pod.securityContext, { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } })
    t.match(container.securityContext, { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } })
    t.match(container.readinessProbe, { httpGet: { path: '/readyz', port: 'https', scheme: 'HTTPS' } })
    t.match(container.livenessProbe, { httpGet: { path: '/healthz', port: 'https', scheme: 'HTTPS' } })
    t.match(container.startupProbe, { httpGet: { path: '/healthz', port: 'https', scheme: 'HTTPS' } })
    t.same(container.ports.map((p) => [p.name, p.containerPort]), [['https', config.server.port], ['metrics', config.server.metricsPort]], 'container ports are the config\'s')
    t.ok((container.lifecycle?.preStop?.sleep?.seconds ?? 0) > 0, 'a preStop sleep')
    const preStop = container.lifecycle?.preStop?.sleep?.seconds ?? 0
    t.ok(pod.terminationGracePeriodSeconds > preStop + durationMs(config.server.shutdown.timeout) / 1000, 'the grace period covers the preStop and the server\'s shutdown.timeout')
    t.ok(find(objects, 'PodDisruptionBudget'), 'a PodDisruptionBudget')

    const mounts = Object.fromEntries(container.volumeMounts.map((m) => [m.name, m.mountPath]))
    const volumes = Object.fromEntries(pod.volumes.map((v) => [v.name, v]))
    t.equal(mounts.config, '/etc/volsync-autorestore', 'the ConfigMap where the Dockerfile\'s CMD reads config.yaml')
    const existingSecret = (values.credentials as { existingSecret?: string } | undefined)?.existingSecret
    if (existingSecret) {
      t.equal(mounts.creds, '/creds')
      t.same(volumes.creds, { name: 'creds', secret: { secretName: existingSecret } })
    } else {
      t.equal(mounts.creds, undefined, 'no credentials mount without credentials.existingSecret')
    }

    const repository = config.movers.repository
    const readsRepository = repository !== undefined && config.catalog.sources.some((s) => s.type !== 'static' && s.filesystem !== undefined && (s.filesystem.path === repository.mountPath || s.filesystem.path.startsWith(`${repository.mountPath}/`)))
    if (readsRepository) {
      t.equal(mounts.repository, repository.mountPath, 'the repository volume is mounted where the sources read it')
      t.same(volumes.repository, repository.nfs ? { name: 'repository', nfs: { ...repository.nfs, readOnly: true } } : { name: 'repository', persistentVolumeClaim: { claimName: repository.pvc?.claimName, readOnly: true } })
    } else {
      t.equal(mounts.repository, undefined, 'no repository volume when no source reads it')
    }

    const mode = (values.tls as { mode?: string } | undefined)?.mode ?? 'self'
    const mutating = must(find(objects, 'MutatingWebhookConfiguration'), 'mutating')
    if (mode === 'self') {
      t.same(config.server.tls.selfManaged, { secretName: `${FULLNAME}-tls`, serviceName: FULLNAME, mutatingWebhookConfigurations: [FULLNAME], validatingWebhookConfigurations: [FULLNAME] }, 'self-managed TLS names the chart\'s Secret, Service and webhook configurations')
      t.equal(mounts.tls, undefined)
    } else {
      t.equal(config.server.tls.selfManaged, undefined)
      t.same([config.server.tls.certFile, config.server.tls.keyFile], ['/tls/tls.crt', '/tls/tls.key'])
      t.same(config.server.tls.dnsNames, [`${FULLNAME}.${NAMESPACE}.svc`], 'a reloaded certificate must name the Service')
      t.equal(mounts.tls, '/tls')
    }
    if (mode === 'cert-manager') {
      const certificate = must(find(objects, 'Certificate', `${FULLNAME}-serving`), 'the serving Certificate') as K8sObject & { spec: { secretName: string; dnsNames: string[] } }
      t.equal(mutating.metadata.annotations?.['cert-manager.io/inject-ca-from'], `${NAMESPACE}/${FULLNAME}-serving`)
      t.ok(certificate.spec.dnsNames.includes(`${FULLNAME}.${NAMESPACE}.svc`), 'the certificate names <service>.<namespace>.svc')
      t.same(volumes.tls, { name: 'tls', secret: { secretName: certificate.spec.secretName } })
    } else {
      t.equal(find(objects, 'Certificate'), undefined)
    }
    if (mode === 'secret') {
      const tls = values.tls as { secret: { name: string; caBundle: string } }
      t.ok(webhooksOf(objects, 'MutatingWebhookConfiguration').every((w) => w.clientConfig.caBundle === tls.secret.caBundle), 'the given caBundle')
      t.same(volumes.tls, { name: 'tls', secret: { secretName: tls.secret.name } })
    }
  })
}

interface PodSpec {
  securityContext: unknown
  terminationGracePeriodSeconds: number
  volumes: { name: string }[]
  containers: {
    securityContext: unknown
    readinessProbe: unknown
    livenessProbe: unknown
    startupProbe: unknown
    ports: { name: string; containerPort: number }[]
    lifecycle?: { preStop?: { sleep?: { seconds: number } } }
    volumeMounts: { name: string; mountPath: string }[]
  }[]
}

t.test('every optional object: what each one holds', async (t) => {
  const objects = await render('every optional object', must(CASES['every optional object'], 'case'))
  t.match(find(objects, 'ServiceMonitor'), { metadata: { labels: { release: 'kube-prometheus-stack' } }, spec: { endpoints: [{ port: 'metrics', path: '/metrics' }] } })
  t.ok(find(objects, 'PrometheusRule'), 'a PrometheusRule')
  t.match(find(objects, 'ConfigMap', `${FULLNAME}-dashboard`), { metadata: { labels: { grafana_dashboard: '1' } } }, 'the dashboard ConfigMap carries the sidecar label')
  const policy = must(find(objects, 'NetworkPolicy'), 'NetworkPolicy') as K8sObject & { spec: { egress: { ports: { port: number | string }[]; to?: unknown[] }[]; ingress: { from?: unknown[] }[] } }
  const egressPorts = policy.spec.egress.flatMap((rule) => rule.ports.map((p) => p.port))
  t.ok(egressPorts.includes(3900), 'egress to the S3 endpoint\'s port (garage :3900)')
  t.ok(egressPorts.includes(53) && egressPorts.includes(443), 'egress to DNS and the API server')
  t.match(policy.spec.ingress[0]?.from, [{ ipBlock: { cidr: '10.0.0.1/32' } }], 'the webhook port only from the API server\'s address')
  t.match(policy.spec.ingress[1]?.from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], 'metrics only from Prometheus')
  const deployment = must(find(objects, 'Deployment'), 'Deployment') as K8sObject & { spec: { template: { spec: { containers: { image: string }[] } } } }
  t.match(deployment.spec.template.spec.containers[0]?.image, /@sha256:0123/, 'a digest pins the image')
})

t.test('a code change the chart does not follow fails the comparison', async (t) => {
  const objects = await render('defaults', {})
  const config = renderedConfig(objects)
  const changed = WEBHOOKS.map((w) => (w.name === 'pvc.volsync-autorestore.io' ? { ...w, operations: ['CREATE', 'UPDATE'] as const } : w))
  const hooks = webhookComparison(objects, changed, config, DEFAULT_WEBHOOK_VALUES)
  t.notSame(hooks.rendered, hooks.expected, 'an operation added to a WEBHOOKS entry')
  const added = [...WEBHOOKS, { ...must(WEBHOOKS[0], 'entry'), name: 'new.volsync-autorestore.io' }]
  const more = webhookComparison(objects, added, config, DEFAULT_WEBHOOK_VALUES)
  t.notSame(more.rendered, more.expected, 'a new WEBHOOKS entry')
  const rbac = rbacComparison(objects, { ...config, guard: { pauseSource: true } })
  t.notSame(rbac.rendered, rbac.expected, 'a grant the rendered config does not have')
})

t.test('values.schema.json is what npm run chart:schema generates from src/config/schema.ts', async (t) => {
  t.equal(readFileSync(VALUES_SCHEMA_FILE, 'utf8'), valuesSchemaText(), 'run npm run chart:schema')
})

t.test('helm refuses what the server refuses, naming the key path', async (t) => {
  const invalid: [string, Values, string][] = [
    ['an unknown enum value', { pvc: { whenBackupNotReady: 'later' } }, '/config/pvc/whenBackupNotReady'],
    ['an unknown key', { pvc: { whenBackupNotReadyy: 'wait' } }, 'whenBackupNotReadyy'],
    ['an S3 prefix starting with /', { catalog: { sources: [{ name: 's3', type: 's3-prefix', s3: { bucket: 'backups', prefix: '/volsync/' } }] } }, '/config/catalog/sources/0/s3/prefix'],
    ['an unknown source type', { catalog: { sources: [{ name: 's3', type: 'borg' }] } }, '/config/catalog/sources/0/type'],
    ['a source without its password file', { catalog: { sources: [{ name: 'k', type: 'kopia', filesystem: { path: '/repository' } }] } }, 'passwordFile'],
    ['a bad duration', { catalog: { interval: '1 minute' } }, '/config/catalog/interval'],
    ['a port out of range', { server: { port: 70000 } }, '/config/server/port'],
  ]
  const refusals = invalid.map(([, config]) => helmTemplate({ config }).then(() => undefined, (e: unknown) => e))
  for (const [i, [what, config, path]] of invalid.entries()) {
    t.throws(() => parseConfig(JSON.stringify(config)), ConfigError, `the server refuses ${what}`)
    const error = await refusals[i]
    t.type(error, HelmError, `helm template refuses ${what}`)
    t.match((error as Error).message, path, `the message names ${path}`)
  }
  const valid: [string, Values][] = [
    ['config: {}', {}],
    ['an empty S3 prefix', { catalog: { sources: [{ name: 's3', type: 's3-prefix', s3: { bucket: 'backups', prefix: '' } }] } }],
    ['a relative S3 prefix', { catalog: { sources: [{ name: 's3', type: 's3-prefix', s3: { bucket: 'backups', prefix: 'volsync/' } }] } }],
  ]
  const acceptances = valid.map(([, config]) => helmTemplate({ config }))
  const offlineRender = helmTemplate({ config: { state: { directory: '/state' } } }).then(() => undefined, (e: unknown) => e)
  const missingCaRender = helmTemplate({ tls: { mode: 'secret', secret: { name: 'x' } } }).then(() => undefined, (e: unknown) => e)
  for (const [i, [what, config]] of valid.entries()) {
    t.doesNotThrow(() => parseConfig(JSON.stringify(config)), `the server accepts ${what}`)
    await t.resolves(must(acceptances[i], what), `helm accepts ${what}`)
  }
  const offline = await offlineRender
  t.match((offline as Error).message, 'config.state.directory', 'offline mode is refused in a cluster, by its key')
  const shortGrace = await helmTemplate({ terminationGracePeriodSeconds: 20 }).then(() => undefined, (e: unknown) => e)
  t.match((shortGrace as Error).message, 'config.server.shutdown.timeout', 'a grace period shorter than preStop + shutdown.timeout is refused')
  const missingCa = await missingCaRender
  t.match((missingCa as Error).message, 'tls.secret.caBundle', 'secret mode needs the caBundle')
})
