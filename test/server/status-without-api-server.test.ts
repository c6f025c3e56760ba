// Self-managed TLS with an API server that cannot be reached: the webhook has no certificate to
// listen with, and that is exactly when /status is needed. The status port serves regardless and
// says what the webhook waits for (issue 13 item 7). Spawned, because what is tested is what a
// `serve` process opens while it waits, and that it still stops on SIGTERM.
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { stringify } from 'yaml'
import { eventually, ROOT, tempDir } from '../support/live-webhook.ts'
import { closedPort, refused } from '../support/ports.ts'

/** Bound on every wait: only a hang guard (a busy 2-core machine starts Node slowly). */
const WAIT_MS = 30_000


const dir = await tempDir(t, 'no-api-server')
const [apiPort, webhookPort, metricsPort] = [await closedPort(), await closedPort(), await closedPort()]
await writeFile(join(dir, 'kubeconfig'), stringify({
  apiVersion: 'v1', kind: 'Config', 'current-context': 'gone',
  clusters: [{ name: 'gone', cluster: { server: `https://127.0.0.1:${apiPort}`, 'insecure-skip-tls-verify': true } }],
  users: [{ name: 'gone', user: { token: 'test-token' } }],
  contexts: [{ name: 'gone', context: { cluster: 'gone', user: 'gone' } }],
}))
await writeFile(join(dir, 'config.yaml'), stringify({
  server: { host: '127.0.0.1', port: webhookPort, metricsHost: '127.0.0.1', metricsPort, tls: { selfManaged: {} } },
  kube: { kubeconfig: join(dir, 'kubeconfig'), identity: 'replica-a' },
  log: { level: 'warn' },
}))

// tap's process-info hook puts its own --import into NODE_OPTIONS; `env -u` gives serve a user's environment.
const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, join(ROOT, 'src', 'main.ts'), 'serve', '--config', join(dir, 'config.yaml')], {
  cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' },
})
let stderr = ''
child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('exit', (code, signal) => done({ code, signal })))
t.teardown(() => {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

const statusUrl = `http://127.0.0.1:${metricsPort}/status`

t.test('the status port answers while the webhook waits for its certificate', async (t) => {
  interface Status { summary: { ready: boolean; pending: string[] }; loops: { name: string; loaded: boolean }[] }
  const status = await eventually('/status to name the TLS Secret it waits for', async () => {
    const res = await fetch(statusUrl, { headers: { accept: 'application/json' } }).catch(() => undefined)
    if (res?.status !== 200) return undefined
    const doc = await res.json() as Status
    return doc.summary.pending.some((line) => line.startsWith('tls:')) ? doc : undefined
  }, WAIT_MS)
  t.equal(status.summary.ready, false, 'not ready')
  t.match(status.summary.pending, [/^cluster: /, /^tls: .*the TLS Secret volsync-system\/volsync-autorestore-tls/], 'it names what it waits for: the cluster lists and the TLS Secret')
  t.match(status.loops.find((l) => l.name === 'tls'), { loaded: false })

  const page = await fetch(`${statusUrl}?format=html`)
  t.equal(page.status, 200)
  t.match(await page.text(), /<p class="summary pending" id="summary">Not ready: [^<]*the TLS Secret volsync-system\/volsync-autorestore-tls/, 'the HTML page says it too')

  const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
  t.equal(metrics.status, 200, '/metrics answers')
  t.match(metrics.headers.get('content-type'), /^text\/plain/)
  t.match(await metrics.text(), /^volsync_autorestore_\w+/m, 'with the server\'s own metrics')

  t.equal(await refused(webhookPort), true, 'the webhook port stays closed until a certificate exists')
  t.equal(child.exitCode, null, 'serve keeps running (and retrying) meanwhile')
})

t.test('SIGTERM while waiting stops serve and frees the status port', async (t) => {
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), WAIT_MS)
  const end = await exited
  clearTimeout(timer)
  t.not(end.signal, 'SIGKILL', `exits by itself (${JSON.stringify(end)})`)
  t.equal(await refused(metricsPort), true, 'the status port is free')
  t.notMatch(stderr, /"level":(50|60)/, 'nothing logged at error level or above')
})
