// The decision line written for every review (issue 14: it is on the hot path, so the logger's
// redaction is cheap) never carries a Secret's values: a Secret CREATE with data and stringData
// through the real webhook routes, the lines captured from the real logger.
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger } from '../../src/log.ts'
import { buildWebhookServer } from '../../src/server/app.ts'
import { createMetrics } from '../../src/server/metrics.ts'
import { snapshotOf } from '../support/snapshot.ts'
import { EXAMPLES, makeCertificates, tempDir } from '../support/live-webhook.ts'

const certs = await makeCertificates(await tempDir(t, 'decision-log'))
const tls = { key: await readFile(certs.tlsKey, 'utf8'), cert: await readFile(certs.tlsCert, 'utf8') }
const config = readFileSync(join(EXAMPLES, 'config.yaml'), 'utf8')

// Values no log line may hold, in the Secret as stringData and (base64) as data.
const SECRETS = ['kopia-password-4f1e', 'aws-secret-9b2c', 'restic-password-77aa']

function secretReview(operation: 'CREATE' | 'UPDATE'): unknown {
  const object = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'radarr-volsync-secret', namespace: 'media' },
    type: 'Opaque',
    // A plain-http endpoint and no KOPIA_PASSWORD in stringData: the Kopia checks have something to say.
    stringData: { KOPIA_REPOSITORY: 's3://volsync-backups/radarr/', KOPIA_S3_ENDPOINT: 'http://garage.lan:3900', AWS_SECRET_ACCESS_KEY: SECRETS[1], RESTIC_PASSWORD: SECRETS[2] },
    data: { KOPIA_FS_PATH: Buffer.from(SECRETS[0]!).toString('base64'), AWS_ACCESS_KEY_ID: Buffer.from(SECRETS[1]!).toString('base64') },
  }
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `secret-${operation}`, kind: { group: '', version: 'v1', kind: 'Secret' }, name: 'radarr-volsync-secret', namespace: 'media',
      operation, object, oldObject: operation === 'UPDATE' ? object : null, dryRun: false,
    },
  }
}

t.test('the decision line for a Secret review carries none of its values', async (t) => {
  const lines: string[] = []
  const sink = new Writable({ write(chunk: Buffer, _encoding, done) { lines.push(chunk.toString()); done() } })
  const snapshot = snapshotOf({ config })
  const app = buildWebhookServer({ snapshot: () => snapshot, metrics: createMetrics({ readSnapshot: () => snapshot }), log: createLogger('info', sink), tls, readiness: { pending: () => [] } })
  t.teardown(() => app.close())
  for (const operation of ['CREATE', 'UPDATE'] as const) {
    for (const url of ['/validate', '/mutate']) {
      const reply = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(secretReview(operation)) })
      t.equal(reply.statusCode, 200, `${operation} ${url} answered`)
    }
  }
  const decisions = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === 'admission decision' && line.kind === 'Secret')
  t.ok(decisions.length >= 2, `decision lines for the Secret: ${decisions.length}`)
  t.match(decisions[0], { webhook: 'validate', kind: 'Secret', namespace: 'media', name: 'radarr-volsync-secret', reasons: Array })
  const text = lines.join('')
  for (const secret of SECRETS) {
    t.notOk(text.includes(secret), `${secret} is in no line`)
    t.notOk(text.includes(Buffer.from(secret).toString('base64')), `${secret} base64 is in no line`)
  }
})
