// A `serve` that cannot bind a port (EADDRINUSE: a second `npm start`, a port taken by another
// program) fails with that reason alone: the loops it had started are stopped, and stopping them
// is not reported as a failure of its own (the catalog poll it aborts used to log "catalog poller
// stopped" at warn, which sent people looking at their backup sources; issue 13 item 10).
import { createServer, type AddressInfo, type Server } from 'node:net'
import t from 'tap'
import { parseConfig } from '../../src/config/load.ts'
import { createLogger } from '../../src/log.ts'
import { startRuntime } from '../../src/server/runtime.ts'
import { exampleConfigYaml, LogSink, makeCertificates, tempDir, type Teardown } from '../support/live-webhook.ts'

const certs = await makeCertificates(await tempDir(t, 'startup-failure'))

async function occupied(t: Teardown): Promise<number> {
  const server: Server = createServer()
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening))
  t.teardown(() => new Promise<void>((closed) => server.close(() => closed())))
  return (server.address() as AddressInfo).port
}

for (const key of ['port', 'metricsPort'] as const) {
  t.test(`server.${key} in use: the start fails with EADDRINUSE, and nothing else is reported`, async (t) => {
    const busy = await occupied(t)
    // The example catalog (restic repositories read natively, a key derivation per repository) is
    // polled from the start, so its first poll is still running when the start fails.
    const yaml = await exampleConfigYaml({ certs, overrides: { server: { [key]: busy }, log: { level: 'debug' } } })
    const sink = new LogSink()
    await t.rejects(startRuntime({ config: parseConfig(yaml, 'test config'), log: createLogger('debug', sink) }), { code: 'EADDRINUSE' })
    const loud = sink.lines.filter((line) => typeof line.level === 'number' && line.level >= 40)
    t.strictSame(loud.map((line) => line.msg), [], 'no warning or error from the loops being stopped')
    t.notOk(sink.lines.some((line) => JSON.stringify(line).includes('poller stopped')), 'the aborted catalog poll is not reported')
  })
}
