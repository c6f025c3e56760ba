// The CLI as a user runs it: `node src/main.ts <command>` in a child process (the Node running
// the tests, so native type stripping works), checking exit codes, stdout and stderr.
import { spawn } from 'node:child_process'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import fastJsonPatch from 'fast-json-patch'
import t from 'tap'
import { describeCertificate } from '../../src/tls/certificate-authority.ts'
import { exampleConfigYaml, exampleReview, makeCertificates, ROOT, SERVICE_DNS, tempDir, type Review, type ReviewResponse } from '../support/live-webhook.ts'

interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  timedOut: boolean
}

// Each child spends most of its ~0.8 s compiling modules: share a compile cache, and run the
// independent subtests in parallel.
const compileCache = await tempDir(t, 'compile-cache')
t.jobs = 4

interface CliOptions {
  readonly stdin?: string
  /** Hard limit against a hung child, not a performance check: it is killed after it (default 60 s). */
  readonly timeoutMs?: number
  /** Once stderr matches `stderr`, the child gets `graceMs` more to exit before it is killed. */
  readonly exitAfter?: { readonly stderr: RegExp; readonly graceMs: number }
}

/** Runs the CLI with the test's own Node; kills it when it overstays. */
function cli(args: readonly string[], options: CliOptions = {}): Promise<Run> {
  return new Promise((done, fail) => {
    // tap's process-info hook puts its own --import into NODE_OPTIONS of every child it sees spawned
    // (~0.5 s per run); `env -u` gives the CLI the plain environment a user has.
    const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, join(ROOT, 'src', 'main.ts'), ...args], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NODE_COMPILE_CACHE: compileCache },
    })
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, options.timeoutMs ?? 60_000)
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
    let grace: NodeJS.Timeout | undefined
    child.stderr.on('data', (chunk: Buffer) => {
      stderr.push(chunk)
      if (options.exitAfter && !grace && options.exitAfter.stderr.test(Buffer.concat(stderr).toString('utf8'))) {
        grace = setTimeout(() => {
          timedOut = true
          child.kill('SIGKILL')
        }, options.exitAfter.graceMs)
      }
    })
    child.on('error', fail)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      clearTimeout(grace)
      done({ code, signal, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8'), timedOut })
    })
    child.stdin.end(options.stdin ?? '')
  })
}

/** Maps with at most `size` calls in flight; results in input order. */
async function inBatches<T, R>(items: readonly T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = []
  for (let i = 0; i < items.length; i += size) results.push(...await Promise.all(items.slice(i, i + size).map(fn)))
  return results
}

const CONFIG = ['--config', 'examples/config.yaml']
const example = (name: string) => join('examples', 'admission', `${name}.json`)

type Operation = fastJsonPatch.Operation
function patchOf(response: ReviewResponse): Operation[] {
  return response.response.patch ? JSON.parse(Buffer.from(response.response.patch, 'base64').toString('utf8')) as Operation[] : []
}
const JELLYFIN_REF = { op: 'add', path: '/spec/dataSourceRef', value: { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'jellyfin-dst' } }

t.test('review FILE and review -: the AdmissionReview response on stdout', async (t) => {
  const [run, fromStdin] = await Promise.all([
    cli(['review', example('pvc-restore'), ...CONFIG]),
    cli(['review', '-', ...CONFIG], { stdin: await readFile(join(ROOT, example('pvc-restore')), 'utf8') }),
  ])
  t.equal(run.code, 0)
  t.equal(run.stderr, '')
  const response = JSON.parse(run.stdout) as ReviewResponse
  t.equal(response.apiVersion, 'admission.k8s.io/v1')
  t.equal(response.kind, 'AdmissionReview')
  t.equal(response.response.uid, '3c8e1f5a-6d27-4b94-8a0e-2f7b9c4d1e53')
  t.equal(response.response.allowed, true)
  t.equal(response.response.patchType, 'JSONPatch')
  t.strictSame(patchOf(response)[0], JELLYFIN_REF, 'adds dataSourceRef -> jellyfin-dst')
  t.notOk('explain' in response, 'no explain without --explain')
  t.equal(fromStdin.code, 0)
  t.equal(fromStdin.stdout, run.stdout, 'the review read from stdin gets the same answer')
})

t.test('review --explain: the decision, its reasons and the decoded patch', async (t) => {
  const run = await cli(['review', '--explain', example('pvc-restore'), ...CONFIG])
  t.equal(run.code, 0)
  const output = JSON.parse(run.stdout) as ReviewResponse & { explain: { rule: string; decision: string; reasons: string[]; mode: string; patch: Operation[] } }
  t.equal(output.explain.rule, 'pvc-restore')
  t.equal(output.explain.decision, 'restore')
  t.equal(output.explain.mode, 'enforce')
  t.match(output.explain.reasons, [/jellyfin-dst has latestImage volsync-jellyfin-dst-dest-20260316081130/])
  t.strictSame(output.explain.patch, patchOf(output), 'explain.patch is the response patch, decoded')
  t.strictSame(output.explain.patch[0], JELLYFIN_REF)
})

t.test('review of a bare object: wrapped as a CREATE review', async (t) => {
  const pvc = (await exampleReview('pvc-restore')).request.object
  const run = await cli(['review', '--explain', '-', ...CONFIG], { stdin: JSON.stringify(pvc) })
  t.equal(run.code, 0, run.stderr)
  const output = JSON.parse(run.stdout) as ReviewResponse & { explain: { decision: string } }
  t.equal(output.response.uid, '00000000-0000-0000-0000-000000000000')
  t.equal(output.explain.decision, 'restore')
  t.strictSame(patchOf(output)[0], JELLYFIN_REF)
})

t.test('review --webhook validate: the validation warnings', async (t) => {
  const run = await cli(['review', '--webhook', 'validate', example('secret-kopia-pitfalls'), ...CONFIG])
  t.equal(run.code, 0)
  const response = JSON.parse(run.stdout) as ReviewResponse
  t.equal(response.response.allowed, true)
  t.equal(response.response.patch, undefined)
  t.match(response.response.warnings, [/no KOPIA_PASSWORD key/, /KOPIA_S3_DISABLE_TLS/])
})

t.test('review --state DIR: cluster state from another directory', async (t) => {
  // No ReplicationDestinations at all: jellyfin's backup is known, its RD is not -> wait, not restore.
  const dir = await tempDir(t, 'state')
  await writeFile(join(dir, 'namespaces.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: { name: media }\n')
  const run = await cli(['review', '--explain', '--state', dir, example('pvc-restore'), ...CONFIG])
  t.equal(run.code, 0, run.stderr)
  t.equal((JSON.parse(run.stdout) as { explain: { decision: string } }).explain.decision, 'wait')
})

t.test('review of an Argo CD / Flux server-side apply CREATE', async (t) => {
  const base = await exampleReview('pvc-restore')
  const object = structuredClone(base.request.object) as { metadata: Record<string, unknown> }
  object.metadata = {
    ...object.metadata,
    labels: { 'app.kubernetes.io/instance': 'jellyfin', 'app.kubernetes.io/name': 'jellyfin', backup: 'hourly' },
    annotations: { 'argocd.argoproj.io/tracking-id': 'jellyfin:/PersistentVolumeClaim:media/jellyfin', 'argocd.argoproj.io/sync-wave': '-1' },
    managedFields: [{
      manager: 'argocd-controller', operation: 'Apply', apiVersion: 'v1', time: '2026-03-16T09:00:00Z', fieldsType: 'FieldsV1',
      fieldsV1: { 'f:metadata': { 'f:labels': { 'f:backup': {}, 'f:app.kubernetes.io/instance': {} } }, 'f:spec': { 'f:accessModes': {}, 'f:resources': { 'f:requests': { 'f:storage': {} } } } },
    }],
  }
  const argo: Review = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      ...base.request,
      uid: '2f0c1e5d-9a4b-4c3e-8d7f-6a5b4c3d2e1f',
      subResource: '',
      requestSubResource: '',
      requestKind: { group: '', version: 'v1', kind: 'PersistentVolumeClaim' },
      userInfo: {
        username: 'system:serviceaccount:argocd:argocd-application-controller',
        uid: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:argocd', 'system:authenticated'],
        extra: { 'authentication.kubernetes.io/pod-name': ['argocd-application-controller-0'] },
      },
      object: object as Record<string, unknown>,
      oldObject: null,
      dryRun: false,
      // A server-side apply that creates the object is a CREATE with PatchOptions.
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'PatchOptions', fieldManager: 'argocd-controller', force: true },
    },
  }
  const dir = await tempDir(t, 'argo')
  await writeFile(join(dir, 'argo.json'), JSON.stringify(argo))
  const run = await cli(['review', join(dir, 'argo.json'), ...CONFIG])
  t.equal(run.code, 0, run.stderr)
  const response = JSON.parse(run.stdout) as ReviewResponse
  t.equal(response.response.uid, argo.request.uid)
  const patch = patchOf(response)
  t.strictSame(patch[0], JELLYFIN_REF)
  t.notOk(patch.some((op) => op.path === '/metadata/annotations'), 'existing annotations are added to, not replaced')
  const patched = fastJsonPatch.applyPatch(structuredClone(object), patch, true, false).newDocument as { metadata: { annotations: Record<string, string>; managedFields: unknown } }
  t.equal(patched.metadata.annotations['argocd.argoproj.io/tracking-id'], 'jellyfin:/PersistentVolumeClaim:media/jellyfin', 'Argo CD tracking annotation kept')
  t.equal(patched.metadata.annotations['volsync-autorestore.io/decision'], 'restore')
  t.strictSame(patched.metadata.managedFields, object.metadata.managedFields, 'managedFields untouched')

  // Argo CD's server-side diff and Flux's dry-run apply send dryRun: true: the same answer.
  const dryRun = structuredClone(argo)
  dryRun.request.dryRun = true
  dryRun.request.userInfo = { username: 'system:serviceaccount:flux-system:kustomize-controller' }
  dryRun.request.options = { apiVersion: 'meta.k8s.io/v1', kind: 'PatchOptions', fieldManager: 'kustomize-controller', dryRun: ['All'] }
  const dry = await cli(['review', '-', ...CONFIG], { stdin: JSON.stringify(dryRun) })
  t.equal(dry.code, 0, dry.stderr)
  t.strictSame(JSON.parse(dry.stdout), response, 'dry run: identical response')
})

t.test('review: usage and input errors exit 2 with a message naming the problem', async (t) => {
  const dir = await tempDir(t, 'badconfig')
  await writeFile(join(dir, 'bad-value.yaml'), 'pvc:\n  whenBackupNotReady: later\n')
  await writeFile(join(dir, 'unknown-key.yaml'), 'pvc:\n  whenBackupNotReddy: deny\n')
  await writeFile(join(dir, 'not-json.txt'), 'apiVersion: v1\nkind: PersistentVolumeClaim\n')
  const cases: { what: string; args: string[]; stdin?: string; stderr: RegExp }[] = [
    { what: 'not-a-review.json', args: ['review', example('not-a-review'), ...CONFIG], stderr: /^volsync-autorestore: invalid AdmissionReview: apiVersion must be "admission\.k8s\.io\/v1"\n$/ },
    { what: 'a missing file', args: ['review', 'examples/admission/nope.json', ...CONFIG], stderr: /^volsync-autorestore: examples\/admission\/nope\.json: cannot read: ENOENT\n$/ },
    { what: 'input that is not JSON', args: ['review', join(dir, 'not-json.txt'), ...CONFIG], stderr: /not-json\.txt: not JSON/ },
    { what: 'an invalid config value', args: ['review', example('pvc-restore'), '--config', join(dir, 'bad-value.yaml')], stderr: /bad-value\.yaml: pvc\.whenBackupNotReady: must be one of "wait", "deny", "fresh"\n$/ },
    { what: 'an unknown config key', args: ['review', example('pvc-restore'), '--config', join(dir, 'unknown-key.yaml')], stderr: /unknown-key\.yaml: pvc\.whenBackupNotReddy: unknown key\n$/ },
    { what: 'a bad --webhook', args: ['review', '--webhook', 'admit', example('pvc-restore'), ...CONFIG], stderr: /--webhook: must be mutate or validate/ },
    { what: 'an unknown option', args: ['review', '--frobnicate', example('pvc-restore')], stderr: /Unknown option '--frobnicate'/ },
    { what: 'an unknown command', args: ['frobnicate'], stderr: /^volsync-autorestore: unknown command "frobnicate"\nusage: volsync-autorestore <command>/ },
  ]
  const runs = await inBatches(cases, 4, (c) => cli(c.args, c.stdin === undefined ? {} : { stdin: c.stdin }))
  for (const [i, c] of cases.entries()) {
    const run = runs[i]!
    t.equal(run.code, 2, `${c.what}: exit 2`)
    t.match(run.stderr, c.stderr, `${c.what}: stderr`)
    t.equal(run.stdout, '', `${c.what}: nothing on stdout`)
  }
  const help = await cli(['--help'])
  t.equal(help.code, 0, '--help: exit 0')
  t.match(help.stdout, /^usage: volsync-autorestore <command> \[options\]/)
})

t.test('catalog: every configured source polled once', async (t) => {
  const json = await cli(['catalog', ...CONFIG, '--json'])
  t.equal(json.code, 0, json.stderr)
  const doc = JSON.parse(json.stdout) as { sources: { name: string; type: string; ok: boolean; error: string | null; entries: { namespace: string; pvc: string; snapshots: number; newest?: string; sizeBytes?: number }[] }[] }
  t.equal(doc.sources.length, 1)
  // examples/repos: restic repositories written by restic 0.14, read natively with the demo password.
  t.match(doc.sources[0], { name: 'nas', type: 's3-prefix', ok: true, error: null })
  t.strictSame(doc.sources[0]?.entries.map((e) => [e.namespace, e.pvc, e.snapshots, e.newest]), [
    ['media', 'jellyfin', 3, '2026-11-22T19:17:55.247Z'],
    ['media', 'sonarr', 1, '2026-03-01T12:00:00.000Z'],
  ], 'media/bazarr, an initialized repository without a snapshot, is no backup')

  const table = await cli(['catalog', ...CONFIG])
  t.equal(table.code, 0)
  const lines = table.stdout.trimEnd().split('\n')
  t.match(lines[0], /^NAMESPACE\s+PVC\s+SOURCE\s+KIND\s+SNAPSHOTS\s+NEWEST\s+SIZE$/)
  t.match(lines[1], /^media\s+jellyfin\s+nas\s+restic\s+3\s+2026-11-22T19:17:55\.247Z\s+-$/)
  t.match(lines[2], /^media\s+sonarr\s+nas\s+restic\s+1\s+2026-03-01T12:00:00\.000Z\s+-$/)
  t.equal(lines.length, 3)
})

t.test('certs: a CA and a serving certificate for the Service', async (t) => {
  const out = await tempDir(t, 'certs-out')
  const run = await cli(['certs', '--out', out, '--dns', 'extra.example', '--ip', '10.0.0.7'])
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /^wrote .*ca\.crt, .*ca\.key, .*tls\.crt, .*tls\.key\n/)
  t.strictSame((await readdir(out)).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'], 'exactly 4 files, no temporaries left')
  const [caPem, tlsPem, tlsKey] = await Promise.all(['ca.crt', 'tls.crt', 'tls.key'].map((f) => readFile(join(out, f), 'utf8')))
  const ca = new X509Certificate(caPem!)
  const serving = new X509Certificate(tlsPem!)
  t.ok(serving.verify(ca.publicKey), 'tls.crt is signed by ca.crt')
  t.ok(serving.checkIssued(ca), 'issued by the CA')
  t.ok(serving.checkPrivateKey(createPrivateKey(tlsKey!)), 'tls.key matches tls.crt')
  t.equal(ca.ca, true)
  t.equal(serving.ca, false)
  const described = describeCertificate(tlsPem!)
  for (const name of ['volsync-autorestore', 'volsync-autorestore.volsync-system', SERVICE_DNS, 'volsync-autorestore.volsync-system.svc.cluster.local', 'extra.example']) {
    t.ok(described.dnsNames.includes(name), `SAN ${name}`)
  }
  t.strictSame(described.ipAddresses, ['10.0.0.7'])
  t.equal(serving.checkHost('extra.example'), 'extra.example')
  const days = (described.notAfter.getTime() - Date.now()) / 86_400_000
  t.ok(days > 364 && days <= 365, `valid for the default 365 days (${days.toFixed(2)})`)
  t.equal((await stat(join(out, 'tls.key'))).mode & 0o777, 0o600, 'tls.key is private')
  t.equal((await stat(join(out, 'ca.key'))).mode & 0o777, 0o600, 'ca.key is private')

  const bad = await tempDir(t, 'certs-bad')
  const badArgs = [['--days', '0'], ['--dns', 'bad name']]
  const rejections = await inBatches(badArgs, 5, (args) => cli(['certs', '--out', bad, ...args]))
  for (const [i, args] of badArgs.entries()) {
    const rejected = rejections[i]!
    t.equal(rejected.code, 2, `${args.join(' ')}: exit 2`)
    t.match(rejected.stderr, new RegExp(`^volsync-autorestore: ${args[0]}: `), `${args.join(' ')}: names the option`)
  }
  t.strictSame(await readdir(bad), [], 'nothing written on bad usage')
})


t.test('serve: a webhook port already in use exits 1 with the reason', async (t) => {
  const busy = createServer()
  await new Promise<void>((listening) => busy.listen(0, '127.0.0.1', listening))
  t.teardown(() => new Promise<void>((closed) => busy.close(() => closed())))
  const port = (busy.address() as AddressInfo).port
  const dir = await tempDir(t, 'serve-busy')
  const certs = await makeCertificates(dir)
  const yaml = (await exampleConfigYaml({ certs })).replace(/^ {2}port: 0$/m, `  port: ${port}`)
  t.match(yaml, new RegExp(`port: ${port}`))
  await writeFile(join(dir, 'config.yaml'), yaml)
  const run = await cli(['serve', '--config', join(dir, 'config.yaml')], { exitAfter: { stderr: /EADDRINUSE/, graceMs: 3000 } })
  t.match(run.stderr, /EADDRINUSE/, 'the reason is printed')
  t.equal(run.timedOut, false, 'the process exits by itself (within 3 s of the error)')
  t.equal(run.code, 1, 'exit 1: runtime failure')
})
