// Self-managed TLS in the running server, against the fake API server: the leader creates the CA
// and serving certificate Secret, writes the CA bundle into the webhook configurations, and the
// webhook serves that certificate, which a client trusting only the bundle accepts for the
// Service's DNS name.
import { join } from 'node:path'
import t from 'tap'
import { stringify } from 'yaml'
import { FakeKubeApi, field } from '../support/fake-kube-api.ts'
import { eventually, startTestRuntime, tempDir, WebhookClient } from '../support/live-webhook.ts'

/** Bound on every wait below: it only guards against a hang (a busy 2-core CI machine is slow). */
const WAIT_MS = 30_000

const dir = await tempDir(t, 'self-tls')
const fake = await FakeKubeApi.start()
t.teardown(() => fake.close())
const webhook = (name: string) => ({ name, admissionReviewVersions: ['v1'], sideEffects: 'NoneOnDryRun', clientConfig: { service: { name: 'volsync-autorestore', namespace: 'volsync-system', path: '/mutate' } } })
fake.seed(
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'volsync-system' } },
  { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'volsync-autorestore' }, webhooks: [webhook('pvc.volsync-autorestore.io')] },
  { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'volsync-autorestore' }, webhooks: [webhook('validate.volsync-autorestore.io')] },
)
await fake.writeKubeconfig(join(dir, 'kubeconfig'))

t.test('the webhook serves the certificate it keeps in its Secret, trusted through the caBundle it wrote', async (t) => {
  const runtime = await startTestRuntime(t, {
    yaml: stringify({
      server: { host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, tls: { selfManaged: {} } },
      kube: { kubeconfig: join(dir, 'kubeconfig'), namespace: 'volsync-system', leaseDuration: '3s', renewDeadline: '2s', retryPeriod: '200ms', identity: 'replica-a' },
      log: { level: 'silent' },
    }),
  })
  const secret = fake.get('secrets', 'volsync-system', 'volsync-autorestore-tls')
  t.ok(secret, 'the Secret exists once the server listens')
  t.equal(field(secret!, 'type'), 'kubernetes.io/tls')
  const bundle = await eventually('the caBundle in both webhook configurations', async () => {
    const mutating = field(fake.get('mutatingwebhookconfigurations', '', 'volsync-autorestore')!, 'webhooks') as Array<{ clientConfig: { caBundle?: string } }>
    const validating = field(fake.get('validatingwebhookconfigurations', '', 'volsync-autorestore')!, 'webhooks') as Array<{ clientConfig: { caBundle?: string } }>
    const a = mutating[0]?.clientConfig.caBundle
    return a && a === validating[0]?.clientConfig.caBundle ? a : undefined
  }, WAIT_MS)
  const ca = Buffer.from(bundle, 'base64').toString('utf8')
  t.match(ca, /^-----BEGIN CERTIFICATE-----/)
  const client = new WebhookClient(runtime.webhookUrl, { ca, servername: 'volsync-autorestore.volsync-system.svc' })
  t.teardown(() => client.close())
  const health = await client.request('GET', '/healthz')
  t.equal(health.status, 200, 'TLS handshake verified against the caBundle, for the Service name')
})
