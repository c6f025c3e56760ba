// SIGTERM under load, against the real `serve` process (issue 13 item 2): the signal and the process
// exit are what is tested, so this spawns one server. 50 keep-alive clients send reviews; a probe
// polls /readyz as the kubelet does, and the load stops 1 s after the first 503 (the endpoints update
// Kubernetes needs before it stops sending). 10 TLS clients sit idle or trickle headers meanwhile.
// Expected: not one failed request, answers during the drain with `Connection: close`, and an exit
// with code 0 by the deadline, with the trickling clients closed by the server.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { eventually, exampleConfigYaml, exampleText, makeCertificates, portOf, tempDir, WebhookClient } from '../support/live-webhook.ts'
import { descriptorCount, KeepAliveLoad, openSlowClients, sigtermUnderLoad, spawnServe } from '../support/shutdown-trial.ts'

const DRAIN = '3s'
const TIMEOUT = '8s'

t.test('SIGTERM under load: 0 failed requests of 50 keep-alive clients, idle and trickling TLS clients closed, exit 0', async (t) => {
  const dir = await tempDir(t, 'serve-shutdown')
  const certs = await makeCertificates(join(dir, 'certs'))
  const configFile = join(dir, 'config.yaml')
  await writeFile(configFile, await exampleConfigYaml({ certs, overrides: { server: { shutdown: { drainPeriod: DRAIN, timeout: TIMEOUT } }, log: { level: 'info' } } }))

  const server = await spawnServe(configFile, 45_000)
  t.teardown(() => { server.child.kill('SIGKILL') })
  const client = new WebhookClient(server.webhookUrl, { ca: certs.ca, keepAlive: false })
  t.teardown(() => client.close())
  await eventually('/readyz 200', async () => ((await client.request('GET', '/readyz')).status === 200 ? true : undefined), 20_000)

  const slow = await openSlowClients(portOf(server.webhookUrl), certs.ca, 10, ['tls-idle', 'tls-headers'])
  t.teardown(() => slow.destroy())
  const load = new KeepAliveLoad(server.webhookUrl, certs.ca, '/mutate', await exampleText('pvc-restore'), 50)
  await eventually('200 reviews answered under load', async () => (load.result.ok >= 200 ? true : undefined), 20_000)
  const descriptorsBefore = descriptorCount(server.pid)

  const { sigtermAt, notReadyAt, result, exit } = await sigtermUnderLoad(server, load, certs.ca)

  t.strictSame(result.failures, {}, 'not one request failed (no refusal, no reset)')
  t.ok(result.okAfterMark > 0, `answered during the drain too (${result.okAfterMark} after SIGTERM, ${result.ok} in all)`)
  t.ok(result.connectionClose > 0, 'answers during the drain carry Connection: close')
  t.equal(exit.code, 0, 'exit code 0')
  t.equal(exit.signal, null, 'exited by itself, not killed')
  t.equal(slow.closedCount(), 10, 'the idle and trickling TLS clients were closed by the server')
  const messages = server.lines.map((line) => String(line.msg))
  t.ok(messages.indexOf('shutting down') >= 0 && messages.indexOf('shutting down') < messages.indexOf('stopped'), 'logged shutting down, then stopped')
  const forced = server.lines.find((line) => line.msg === 'shutdown deadline: closed connections still open')
  t.ok(forced && Number(forced.webhook) >= 1, 'the trickling clients were force-closed at the deadline, and that was logged')
  t.comment(`readyz 503 ${notReadyAt - sigtermAt} ms after SIGTERM; exit ${exit.at - sigtermAt} ms after SIGTERM (drain ${DRAIN}, timeout ${TIMEOUT}); ${descriptorsBefore} descriptors under load`)
})
