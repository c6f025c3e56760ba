// `npm run bench` (startup part): process start to `/readyz` 200 for the real `serve`, first with
// 30, 300 and 3,000 password-protected per-PVC restic repositories in a directory, then on the
// embedded default (examples/config.yaml with its ports moved, as `npm start` serves it). Prints
// the goals beside the figures (< 5 s with any number of repositories; < 1.5 s for the embedded
// default) and met / NOT met. Enforces nothing.
//
// The repositories are hard links of the real restic 0.14 fixture test/fixtures/restic/v2 (3
// snapshots, one real scrypt key file), one per PVC at <ns>/<pvc>/: each is its own location, so
// reading it exactly costs a real key derivation. One PVC in ten holds the `empty` fixture
// instead (initialized, no snapshot: not a backup). "Decisions right from the first answer": the
// moment /readyz first answers 200, one CREATE review of a PVC with a backup must be decided
// `wait` (a backup, no ReplicationDestination yet) and one over an empty repository `fresh`.
// Also printed: how many entries were exact at that moment, and the time until all were (only
// waited for up to --exact-wait seconds, 60).
// Flags: --sizes 30,300,3000; --exact-wait S.
import { spawn, type ChildProcess } from 'node:child_process'
import { link, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { request as httpsRequest } from 'node:https'
import { request as httpRequest } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { ensureDevCertificate } from '../src/tls/write-certificates.ts'
import { recordGoal } from './goal-rows.ts'
import { fmt, pad, padLeft } from './stats.ts'

const { values } = parseArgs({ options: {
  sizes: { type: 'string', default: '30,300,3000' },
  'exact-wait': { type: 'string', default: '60' },
} })
const SIZES = values.sizes.split(',').map(Number)
const EXACT_WAIT_MS = Number(values['exact-wait']) * 1000
const ROOT = resolve(import.meta.dirname, '..')
const FIXTURES = join(ROOT, 'test', 'fixtures', 'restic')
const PASSWORD = 'test-password'

/** Hard-links every file of `from` below `to` (same bytes, no copy). */
async function linkTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true })
  for (const entry of await readdir(from, { withFileTypes: true })) {
    if (entry.isDirectory()) await linkTree(join(from, entry.name), join(to, entry.name))
    else await link(join(from, entry.name), join(to, entry.name))
  }
}

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? done(address.port) : fail(new Error('no port'))))
    })
  })
}

function get(url: string): Promise<{ status: number; body: string }> {
  const request = url.startsWith('https:') ? httpsRequest : httpRequest
  return new Promise((done, fail) => {
    const req = request(url, { rejectUnauthorized: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
    })
    req.on('error', fail)
    req.end()
  })
}

function post(url: string, body: string): Promise<string> {
  return new Promise((done, fail) => {
    const req = httpsRequest(url, { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => done(Buffer.concat(chunks).toString('utf8')))
    })
    req.on('error', fail)
    req.end(body)
  })
}

interface Started {
  readonly child: ChildProcess
  readonly webhook: string
  readonly metrics: string
  readonly readyMs: number
}

/** Spawns `serve --config FILE` in ROOT and resolves when /readyz first answers 200 (ms since the spawn). */
async function serveUntilReady(configFile: string, webhookPort: number, metricsPort: number): Promise<Started> {
  const started = performance.now()
  const { NODE_OPTIONS: _options, ...env } = process.env
  const child = spawn(process.execPath, ['src/main.ts', 'serve', '--config', configFile], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString('utf8') })
  const webhook = `https://127.0.0.1:${webhookPort}`
  const metrics = `http://127.0.0.1:${metricsPort}`
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${stderr}`)
    const answer = await get(`${webhook}/readyz`).catch(() => undefined)
    if (answer?.status === 200) return { child, webhook, metrics, readyMs: performance.now() - started }
    await new Promise((r) => setTimeout(r, 10))
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGINT')
  child.kill('SIGINT') // a second signal cuts the drain period short
  await exited
}

const reviewTemplate = JSON.parse(await readFile(join(ROOT, 'examples', 'admission', 'pvc-wait.json'), 'utf8')) as {
  request: { uid: string; name: string; namespace: string; object: { metadata: { name: string; namespace: string } } }
}

/** The decision a CREATE of `namespace/name` gets now (the annotation volsync-autorestore.io/decision). */
async function decide(webhook: string, namespace: string, name: string): Promise<string> {
  const review = structuredClone(reviewTemplate)
  review.request.uid = `bench-${namespace}-${name}`
  review.request.name = name
  review.request.namespace = namespace
  review.request.object.metadata.name = name
  review.request.object.metadata.namespace = namespace
  const answer = JSON.parse(await post(`${webhook}/mutate`, JSON.stringify(review))) as { response: { patch?: string } }
  const patch = answer.response.patch ? JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8')) as Array<{ path: string; value?: Record<string, string> }> : []
  return patch.find((op) => op.path === '/metadata/annotations')?.value?.['volsync-autorestore.io/decision'] ?? '(none)'
}

interface StatusSources { catalog: { sources: Array<{ entries: Array<{ exact?: boolean }> }> } }

async function exactCount(metrics: string): Promise<{ exact: number; total: number }> {
  const status = JSON.parse((await get(`${metrics}/status`)).body) as StatusSources
  const entries = status.catalog.sources.flatMap((s) => s.entries)
  return { exact: entries.filter((e) => e.exact !== false).length, total: entries.length }
}

const scratch = await mkdtemp(join(tmpdir(), 'bench-startup-'))
const rows: string[] = []
try {
  await mkdir(join(scratch, 'state'))
  await writeFile(join(scratch, 'state', 'namespaces.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-0}\n')
  await writeFile(join(scratch, 'password'), PASSWORD)
  // Made before the first measured start: creating a key pair is a first start's cost, not a catalog's.
  await ensureDevCertificate(join(scratch, 'tls.crt'), join(scratch, 'tls.key'))
  console.log(`startup: process start to /readyz 200 (the real serve), Node ${process.version}`)
  console.log(`${pad('case', 44)}${padLeft('ready s', 9)}${padLeft('exact at ready', 16)}${padLeft('all exact s', 13)}  decisions at ready  goal`)
  for (const n of SIZES) {
    const repos = join(scratch, `repos-${n}`)
    // 100 PVCs per namespace; every tenth repository initialized without a snapshot.
    for (let i = 0; i < n; i++) await linkTree(join(FIXTURES, i % 10 === 9 ? 'empty' : 'v2'), join(repos, `ns-${Math.floor(i / 100)}`, `pvc-${i}`))
    const [port, metricsPort] = [await freePort(), await freePort()]
    const configFile = join(scratch, `config-${n}.yaml`)
    await writeFile(configFile, [
      `server: {port: ${port}, metricsPort: ${metricsPort}, host: 127.0.0.1, metricsHost: 127.0.0.1, tls: {certFile: ${scratch}/tls.crt, keyFile: ${scratch}/tls.key}, devCertificate: true, shutdown: {drainPeriod: 0s}}`,
      `state: {directory: ${scratch}/state}`,
      'log: {level: warn}',
      `catalog: {sources: [{name: nas, type: s3-prefix, filesystem: {path: ${repos}}, resticPasswordFile: ${scratch}/password}]}`,
    ].join('\n'))
    const run = await serveUntilReady(configFile, port, metricsPort)
    try {
      const decisions = [await decide(run.webhook, 'ns-0', 'pvc-0'), await decide(run.webhook, 'ns-0', 'pvc-9')]
      const right = decisions[0] === 'wait' && decisions[1] === 'fresh'
      const atReady = await exactCount(run.metrics)
      let allExact = '-'
      const waitUntil = performance.now() + EXACT_WAIT_MS
      for (;;) {
        const now = await exactCount(run.metrics)
        if (now.exact === now.total) {
          allExact = fmt((performance.now() - waitUntil + EXACT_WAIT_MS + run.readyMs) / 1000)
          break
        }
        if (performance.now() > waitUntil) {
          allExact = `>${fmt((EXACT_WAIT_MS + run.readyMs) / 1000)} (${now.exact})`
          break
        }
        await new Promise((r) => setTimeout(r, 200))
      }
      const met = run.readyMs < 5000 && right
      rows.push(`${pad(`${n} restic repositories with a password`, 44)}${padLeft(fmt(run.readyMs / 1000), 9)}${padLeft(`${atReady.exact}/${atReady.total}`, 16)}${padLeft(allExact, 13)}  ${pad(`${decisions.join(', ')} ${right ? '(right)' : '(WRONG)'}`, 19)} < 5 s, right: ${met ? 'met' : 'NOT met'}`)
      console.log(rows.at(-1))
      recordGoal({ what: `process start to ready, ${n} password-protected per-PVC restic repositories in a directory`, now: `${fmt(run.readyMs / 1000)} s, decisions at ready ${right ? 'right' : 'WRONG'} (${atReady.exact}/${atReady.total} exact at ready; all exact at ${allExact} s)`, goal: '< 5 s, decisions right from the first answer', met, by: 'bench/startup.ts' })
    } finally {
      await stop(run.child)
      await rm(repos, { recursive: true, force: true })
    }
  }

  // The embedded default as `npm start` serves it, with its ports moved (others may be using 8443/9090).
  const [port, metricsPort] = [await freePort(), await freePort()]
  const text = (await readFile(join(ROOT, 'examples', 'config.yaml'), 'utf8'))
    .replace(/port: 8443/, `port: ${port}`).replace(/metricsPort: 9090/, `metricsPort: ${metricsPort}`)
    .replace(/certFile: certs\/tls.crt, keyFile: certs\/tls.key/, `certFile: ${scratch}/default.crt, keyFile: ${scratch}/default.key`)
  const configFile = join(scratch, 'default.yaml')
  await writeFile(configFile, text)
  // The first start creates the dev certificate (as a first `npm start` does); measured: the later ones.
  const times: number[] = []
  for (let i = 0; i < 4; i++) {
    const run = await serveUntilReady(configFile, port, metricsPort)
    if (i > 0) times.push(run.readyMs)
    await stop(run.child)
  }
  times.sort((a, b) => a - b)
  const medianMs = times[Math.floor(times.length / 2)]!
  recordGoal({ what: '`npm start` (embedded default) to /readyz 200, median of 3', now: `${fmt(medianMs / 1000)} s`, goal: '< 1.5 s', met: medianMs < 1500, by: 'bench/startup.ts' })
  console.log(`${pad('npm start (embedded default), median of 3', 44)}${padLeft(fmt(medianMs / 1000), 9)}${padLeft('-', 16)}${padLeft('-', 13)}  ${pad('-', 19)} < 1.5 s: ${medianMs < 1500 ? 'met' : 'NOT met'}`)
} finally {
  await rm(scratch, { recursive: true, force: true })
}
