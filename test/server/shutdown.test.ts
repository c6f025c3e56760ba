// The runtime's shutdown sequence in-process (issue 13 item 2): drain() turns /readyz 503 at once while
// reviews are still answered, each with `Connection: close`; close() cuts the drain short, stops the
// servers and only then the loops. (The signal path and the deadline, with a real process, are
// test/cli/serve-shutdown.test.ts.)
import net from 'node:net'
import t from 'tap'
import { exampleConfigYaml, exampleText, makeCertificates, portOf, startTestRuntime, tempDir, waitReady, WebhookClient } from '../support/live-webhook.ts'

const certs = await makeCertificates(await tempDir(t, 'shutdown'))

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.destroy()
      resolve(true)
    })
    socket.on('error', () => resolve(false))
  })
}

t.test('drain: /readyz 503, reviews answered with Connection: close; close: servers first, then the loops', async (t) => {
  const yaml = await exampleConfigYaml({ certs, overrides: { server: { shutdown: { drainPeriod: '60s', timeout: '70s' } } } })
  const runtime = await startTestRuntime(t, { yaml })
  const client = new WebhookClient(runtime.webhookUrl, { ca: certs.ca })
  t.teardown(() => client.close())
  await waitReady(client)
  const before = await client.request('POST', '/mutate', await exampleText('pvc-restore'))
  t.equal(before.status, 200)
  t.not(before.socket.destroyed, true, 'keep-alive before the drain')

  let drained = false
  const draining = runtime.drain().then(() => { drained = true })
  const ready = await client.request('GET', '/readyz')
  t.equal(ready.status, 503, '/readyz fails at once')
  t.equal(ready.text, 'not ready: shutting down\n')
  t.ok(ready.reusedSocket, 'over the keep-alive connection opened before: it was not dropped')

  const during = await client.request('POST', '/mutate', await exampleText('pvc-restore'))
  t.equal(during.status, 200, 'reviews are still answered')
  t.match(JSON.parse(during.text), { response: { allowed: true, patchType: 'JSONPatch' } }, 'with the decision of live state')
  const next = await client.request('GET', '/healthz')
  t.notOk(next.reusedSocket, 'the server closed the connection after its answer (Connection: close): the client opened a new one')
  t.ok(runtime.supervisor.isLeader, 'the loops run on while draining')
  t.notOk(drained, 'the drain period (60 s) is not over')

  // The loops stop only once the webhook has stopped accepting.
  const port = portOf(runtime.webhookUrl)
  const stop = runtime.supervisor.stop.bind(runtime.supervisor)
  let webhookAcceptedAtLoopStop: boolean | undefined
  runtime.supervisor.stop = async () => {
    webhookAcceptedAtLoopStop = await connects(port)
    return stop()
  }
  client.close()
  await runtime.close()
  await draining
  t.ok(drained, 'close() cut the drain short')
  t.equal(webhookAcceptedAtLoopStop, false, 'the webhook port was closed before the loops were stopped')
  t.notOk(runtime.supervisor.isLeader, 'the loops have stopped')
  t.notOk(await connects(port), 'the webhook port refuses after close')
  t.equal(runtime.close(), runtime.close(), 'close() is idempotent: one promise')
})
