// The container's honesty check (issue 11 item 6): the production tree the Dockerfile builds
// (`npm ci --omit=dev` from package.json + package-lock.json, then src/) serves, so a runtime
// import of a devDependency fails here instead of in a cluster. NEEDS THE NETWORK: npm ci reaches
// the npm registry (reachable here and in CI; --prefer-offline uses the local cache first).
// The production tree has no `node` package, so it runs under the main tree's Node 24.
// npm ci takes 15-40 s on a busy 2-core machine, so its result is kept per package.json +
// package-lock.json in the system temp dir (outside any node_modules, so nothing of the main tree can
// be resolved from it); src/ and examples/ are copied fresh every run.
import { spawn, execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { parseDocument } from 'yaml'
import { ROOT } from './helm.ts'

const NODE = join(ROOT, 'node_modules/.bin/node')

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

function healthz(port: number, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', ca, servername: 'localhost', timeout: 2000 }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

t.test('the production tree (npm ci --omit=dev) serves the embedded default over TLS', async (t) => {
  const manifests = ['package.json', 'package-lock.json']
  const hash = createHash('sha256')
  for (const file of manifests) hash.update(readFileSync(join(ROOT, file)))
  const dir = join(tmpdir(), `volsync-autorestore-production-${hash.digest('hex').slice(0, 16)}`)
  if (!existsSync(join(dir, 'node_modules'))) {
    const partial = `${dir}.${process.pid}.partial`
    rmSync(partial, { recursive: true, force: true })
    mkdirSync(partial, { recursive: true })
    for (const file of manifests) cpSync(join(ROOT, file), join(partial, file))
    await new Promise<void>((resolve, reject) => {
      execFile('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: partial, env: { ...process.env, NODE_ENV: 'production' }, timeout: 240_000 }, (error, _stdout, stderr) => {
        if (error) reject(new Error(`npm ci --omit=dev: ${stderr || error.message}`))
        else resolve()
      })
    })
    rmSync(dir, { recursive: true, force: true })
    renameSync(partial, dir)
  }
  for (const entry of ['src', 'examples', 'certs', 'config.yaml']) rmSync(join(dir, entry), { recursive: true, force: true })
  for (const entry of ['src', 'examples']) cpSync(join(ROOT, entry), join(dir, entry), { recursive: true })
  const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> }
  const devOnly = Object.entries(lock.packages).filter(([path, p]) => path.startsWith('node_modules/') && p.dev).map(([path]) => path)
  t.ok(devOnly.length > 0, `${devOnly.length} dev-only packages in the lock file`)
  t.notOk(devOnly.some((path) => { try { return readFileSync(join(dir, path, 'package.json')).length > 0 } catch { return false } }), 'none of them is installed')

  // The embedded default (examples/config.yaml) on free ports, so a running `npm start` is no conflict.
  const [port, metricsPort] = [await freePort(), await freePort()]
  const config = parseDocument(readFileSync(join(dir, 'examples/config.yaml'), 'utf8'))
  config.setIn(['server', 'port'], port)
  config.setIn(['server', 'metricsPort'], metricsPort)
  writeFileSync(join(dir, 'config.yaml'), config.toString())

  const server = spawn(NODE, ['src/main.ts', 'serve', '--config', 'config.yaml'], { cwd: dir, env: { ...process.env, NODE_ENV: 'production', NODE_PATH: '' }, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  server.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)))
  t.teardown(() => { server.kill('SIGKILL') })

  let answer: { status: number; body: string } | undefined
  for (let attempt = 0; attempt < 200 && !answer; attempt++) {
    if (server.exitCode !== null) break
    try {
      answer = await healthz(port, readFileSync(join(dir, 'certs/ca.crt')))
    } catch {
      await sleep(100)
    }
  }
  t.same(answer, { status: 200, body: 'ok\n' }, `GET /healthz over TLS, verified against the dev CA${server.exitCode !== null ? ` (the server exited ${server.exitCode}: ${stderr})` : ''}`)
  server.kill('SIGTERM')
  t.equal(await exited, 0, 'exits 0 on SIGTERM')
})
