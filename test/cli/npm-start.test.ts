// `npm start` stopped with SIGTERM (what a terminal's process manager, or a container runtime
// running npm, sends) must stop the server too: npm forwards the signal to its script's process,
// and a shell in between would swallow it and leave the server orphaned, holding both ports
// (issue 13 item 10). Spawned: npm, its script and the server are the processes under test.
import { spawn, spawnSync } from 'node:child_process'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { exampleConfigYaml, eventually, ROOT, tempDir } from '../support/live-webhook.ts'
import { closedPort, refused } from '../support/ports.ts'

/** Bound on every wait: only a hang guard (npm and the server start slowly on a busy 2-core machine). */
const WAIT_MS = 60_000
/** How long the server may take to stop after npm exited (its drain period is a few seconds). */
const STOP_MS = 20_000


/** Pids of the processes whose command line contains `marker` (this test's own config path). */
async function pidsWith(marker: string): Promise<number[]> {
  const pids: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')
    if (cmdline.includes(marker)) pids.push(Number(entry))
  }
  return pids
}

const npmFound = spawnSync('npm', ['--version'], { stdio: 'ignore' }).status === 0

t.test('SIGTERM to npm start stops the server and frees its ports', { skip: npmFound ? false : 'npm is not on PATH' }, async (t) => {
  const dir = await tempDir(t, 'npm-start')
  const [port, metricsPort] = [await closedPort(), await closedPort()]
  const config = join(dir, 'config.yaml')
  // The embedded default on free ports, its development certificate created in the temporary directory.
  await writeFile(config, await exampleConfigYaml({
    certs: { caCert: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'), tlsCert: join(dir, 'tls.crt'), tlsKey: join(dir, 'tls.key') },
    overrides: { server: { port, metricsPort, devCertificate: true } },
  }))
  // `npm start -- --config FILE`: the script's own --config comes first, the last one wins.
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' }
  delete env.NODE_OPTIONS // tap's process-info hook; a user's npm has none
  const npm = spawn('npm', ['start', '--', '--config', config], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env })
  let stderr = ''
  npm.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
  const npmExited = new Promise<void>((done) => npm.once('exit', () => done()))
  t.teardown(async () => {
    // Whatever is left of this test's processes (an orphaned server when the bug is back).
    for (const pid of await pidsWith(config)) process.kill(pid, 'SIGKILL')
  })

  const started = Date.now()
  await eventually('the server started by npm start to answer /status', async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/status`).catch(() => undefined)
    return res?.status === 200 ? true : undefined
  }, WAIT_MS)
  t.equal(await refused(port), false, 'the webhook port is open')
  t.ok((await pidsWith(config)).length >= 2, 'npm and the server are running')

  t.comment(`started in ${Date.now() - started} ms`)
  const stopping = Date.now()
  npm.kill('SIGTERM')
  await npmExited
  const freed = await eventually('both ports to be free after npm exited', async () => (await refused(port)) && (await refused(metricsPort)) ? true : undefined, STOP_MS)
    .catch((error: unknown) => error)
  t.comment(`stopped in ${Date.now() - stopping} ms`)
  t.equal(freed, true, 'the webhook and status ports are free: no orphaned server')
  t.strictSame(await pidsWith(config), [], 'no process of this npm start is left')
  t.notMatch(stderr, /ERR!/, 'npm reports no error')
})
