// The CLI's behaviour, in-process: runCli (what main.ts runs) with stdin/stdout/stderr as buffers,
// so dispatch, `--help`, the commands and the exit-code mapping are the code under test, without
// a Node start per case. A few cases spawn `node src/main.ts` where the process boundary is the
// point: exit codes and output as a shell sees them, which modules a command loads, and a server
// that must exit by itself after a fatal error.
import { spawn } from 'node:child_process'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { parseArgs } from 'node:util'
import fastJsonPatch from 'fast-json-patch'
import t from 'tap'
import { serveOptions } from '../../src/commands/serve.ts'
import { UsageError } from '../../src/commands/usage-error.ts'
import { exitCodeFor, runCli } from '../../src/main.ts'
import { describeCertificate } from '../../src/tls/certificate-authority.ts'
import { exampleConfigYaml, exampleReview, makeCertificates, ROOT, SERVICE_DNS, tempDir, type Review, type ReviewResponse, type Teardown } from '../support/live-webhook.ts'

// Relative paths in examples/config.yaml (state, repositories, password) are read from the checkout.
process.chdir(ROOT)

const VERSION = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version

class Collect extends Writable {
  text = ''
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString('utf8')
    done()
  }
}

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** One command line through runCli, with `stdin` as its standard input. */
async function cli(args: readonly string[], stdin = ''): Promise<Run> {
  const stdout = new Collect()
  const stderr = new Collect()
  const code = await runCli(args, { stdout, stderr, stdin: Readable.from(stdin === '' ? [] : [Buffer.from(stdin)]) })
  return { code, stdout: stdout.text, stderr: stderr.text }
}

interface Spawned extends Run {
  timedOut: boolean
  /** URLs of every module the child loaded (with `recordModules`). */
  modules: string[]
}

interface SpawnOptions {
  /** Record the modules the child loads (test/cli/record-loaded-modules.ts). */
  readonly recordModules?: boolean
  /** Once stderr matches `stderr`, the child gets `graceMs` more to exit before it is killed. */
  readonly exitAfter?: { readonly stderr: RegExp; readonly graceMs: number }
}

/** `node src/main.ts ...args` as a user runs it; killed after 60 s (a hang guard, not a timing check). */
async function spawnCli(t: Teardown, args: readonly string[], options: SpawnOptions = {}): Promise<Spawned> {
  const moduleList = options.recordModules ? join(await tempDir(t, 'modules'), 'loaded.txt') : undefined
  const nodeArgs = [...(moduleList ? ['--import', join(ROOT, 'test', 'cli', 'record-loaded-modules.ts')] : []), join(ROOT, 'src', 'main.ts'), ...args]
  const run = await new Promise<Omit<Spawned, 'modules'>>((done, fail) => {
    // tap's process-info hook puts its own --import into NODE_OPTIONS of every child it sees spawned;
    // `env -u` gives the CLI the plain environment a user has. NODE_DISABLE_COMPILE_CACHE keeps the
    // CLI from writing into the machine's temporary directory.
    const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, ...nodeArgs], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1', ...(moduleList ? { RECORD_LOADED_MODULES: moduleList } : {}) },
    })
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    let timedOut = false
    const kill = () => {
      timedOut = true
      child.kill('SIGKILL')
    }
    const timer = setTimeout(kill, 60_000)
    let grace: NodeJS.Timeout | undefined
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => {
      stderr.push(chunk)
      if (options.exitAfter && !grace && options.exitAfter.stderr.test(Buffer.concat(stderr).toString('utf8'))) grace = setTimeout(kill, options.exitAfter.graceMs)
    })
    child.on('error', fail)
    child.on('close', (code) => {
      clearTimeout(timer)
      clearTimeout(grace)
      done({ code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8'), timedOut })
    })
  })
  const modules = moduleList ? (await readFile(moduleList, 'utf8')).split('\n').filter((line) => line !== '') : []
  return { ...run, modules }
}

/** The project's own modules (paths below src/) and the npm packages among `urls`. */
function loadedFrom(urls: readonly string[]): { src: string[]; packages: string[] } {
  const src = new Set<string>()
  const packages = new Set<string>()
  for (const url of urls) {
    const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1]
    if (pkg) packages.add(pkg)
    else if (url.startsWith(`file://${ROOT}/src/`)) src.add(url.slice(`file://${ROOT}/`.length))
  }
  return { src: [...src].sort(), packages: [...packages].sort() }
}

const CONFIG = ['--config', 'examples/config.yaml']
const example = (name: string) => join('examples', 'admission', `${name}.json`)

type Operation = fastJsonPatch.Operation
function patchOf(response: ReviewResponse): Operation[] {
  return response.response.patch ? JSON.parse(Buffer.from(response.response.patch, 'base64').toString('utf8')) as Operation[] : []
}
const JELLYFIN_REF = { op: 'add', path: '/spec/dataSourceRef', value: { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'jellyfin-dst' } }

t.test('review FILE and review -: the AdmissionReview response on stdout', async (t) => {
  const run = await cli(['review', example('pvc-restore'), ...CONFIG])
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
  const fromStdin = await cli(['review', '-', ...CONFIG], await readFile(example('pvc-restore'), 'utf8'))
  t.equal(fromStdin.code, 0)
  t.equal(fromStdin.stdout, run.stdout, 'the review read from stdin gets the same answer')
})

t.test('review --explain: the decision, its reasons and the decoded patch', async (t) => {
  const run = await cli(['review', '--explain', example('pvc-restore'), ...CONFIG])
  t.equal(run.code, 0)
  const output = JSON.parse(run.stdout) as ReviewResponse & { explain: { rule: string; decision: string; reasons: string[]; mode: string; patch: Operation[]; catalog: { read: string; note?: string } } }
  t.equal(output.explain.rule, 'pvc-restore')
  t.equal(output.explain.catalog.read, 'listing', 'says the restic repositories were decided from their listing (no key derivation)')
  t.match(output.explain.catalog.note, /2 restic repositories were decided from their listing, not decrypted/)
  t.equal(output.explain.decision, 'restore')
  t.equal(output.explain.mode, 'enforce')
  t.match(output.explain.reasons, [/jellyfin-dst has latestImage volsync-jellyfin-dst-dest-20260316081130/])
  t.strictSame(output.explain.patch, patchOf(output), 'explain.patch is the response patch, decoded')
  t.strictSame(output.explain.patch[0], JELLYFIN_REF)
})

t.test('review of a bare object: wrapped as a CREATE review', async (t) => {
  const pvc = (await exampleReview('pvc-restore')).request.object
  const run = await cli(['review', '--explain', '-', ...CONFIG], JSON.stringify(pvc))
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
  const dry = await cli(['review', '-', ...CONFIG], JSON.stringify(dryRun))
  t.equal(dry.code, 0, dry.stderr)
  t.strictSame(JSON.parse(dry.stdout), response, 'dry run: identical response')
})

t.test('usage and input errors exit 2 with one message naming the problem', async (t) => {
  const dir = await tempDir(t, 'badconfig')
  await writeFile(join(dir, 'bad-value.yaml'), 'pvc:\n  whenBackupNotReady: later\n')
  await writeFile(join(dir, 'unknown-key.yaml'), 'pvc:\n  whenBackupNotReddy: deny\n')
  await writeFile(join(dir, 'not-json.txt'), 'apiVersion: v1\nkind: PersistentVolumeClaim\n')
  await writeFile(join(dir, 'same-port.yaml'), 'server:\n  port: 9090\n')
  const cases: { what: string; args: string[]; stderr: RegExp }[] = [
    { what: 'not-a-review.json', args: ['review', example('not-a-review'), ...CONFIG], stderr: /^volsync-autorestore: invalid AdmissionReview: apiVersion must be "admission\.k8s\.io\/v1"\n$/ },
    { what: 'a missing file', args: ['review', 'examples/admission/nope.json', ...CONFIG], stderr: /^volsync-autorestore: examples\/admission\/nope\.json: cannot read: ENOENT\n$/ },
    { what: 'input that is not JSON', args: ['review', join(dir, 'not-json.txt'), ...CONFIG], stderr: /not-json\.txt: not JSON/ },
    { what: 'no FILE', args: ['review', ...CONFIG], stderr: /^volsync-autorestore: review: give exactly one FILE \(or - for stdin\)\n$/ },
    { what: 'an invalid config value', args: ['review', example('pvc-restore'), '--config', join(dir, 'bad-value.yaml')], stderr: /bad-value\.yaml: pvc\.whenBackupNotReady: must be one of "wait", "deny", "fresh"\n$/ },
    { what: 'an unknown config key', args: ['review', example('pvc-restore'), '--config', join(dir, 'unknown-key.yaml')], stderr: /unknown-key\.yaml: pvc\.whenBackupNotReddy: unknown key\n$/ },
    { what: 'an invalid config for catalog', args: ['catalog', '--config', join(dir, 'bad-value.yaml')], stderr: /pvc\.whenBackupNotReady: must be one of/ },
    { what: 'a bad --webhook', args: ['review', '--webhook', 'admit', example('pvc-restore'), ...CONFIG], stderr: /--webhook: must be mutate or validate/ },
    { what: 'an unknown option', args: ['review', '--frobnicate', example('pvc-restore')], stderr: /Unknown option '--frobnicate'/ },
    { what: 'an unknown catalog option', args: ['catalog', '--yaml'], stderr: /Unknown option '--yaml'/ },
    { what: 'the webhook port equal to the metrics port', args: ['serve', '--config', join(dir, 'same-port.yaml')], stderr: /^volsync-autorestore: [^\n]*same-port\.yaml: server\.port and server\.metricsPort: both are 9090;[^\n]*\n$/ },
    { what: 'certs --ip that is not an address', args: ['certs', '--out', join(dir, 'certs'), '--ip', 'not-an-ip'], stderr: /^volsync-autorestore: --ip: "not-an-ip" is not an IPv4 or IPv6 address\n$/ },
    { what: 'certs --ip with a zone', args: ['certs', '--out', join(dir, 'certs'), '--ip', '127.0.0.1', '--ip', 'fe80::1%eth0'], stderr: /--ip: "fe80::1%eth0" is not an IPv4 or IPv6 address/ },
    { what: 'an unknown command', args: ['frobnicate'], stderr: /^volsync-autorestore: unknown command "frobnicate"\nusage: volsync-autorestore <command>/ },
  ]
  for (const c of cases) {
    const run = await cli(c.args)
    t.equal(run.code, 2, `${c.what}: exit 2`)
    t.match(run.stderr, c.stderr, `${c.what}: stderr`)
    t.equal(run.stdout, '', `${c.what}: nothing on stdout`)
  }
})

t.test('exitCodeFor: usage and config errors are 2, anything else 1', async (t) => {
  t.equal(exitCodeFor(new UsageError('--days: must be a whole number')), 2)
  let parseError: unknown
  try {
    parseArgs({ args: ['--nope'], options: {} })
  } catch (error) {
    parseError = error
  }
  t.equal(exitCodeFor(parseError), 2, "parseArgs' ERR_PARSE_ARGS_UNKNOWN_OPTION")
  t.equal(exitCodeFor(Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' })), 1)
  t.equal(exitCodeFor(new Error('source failed')), 1)
  t.equal(exitCodeFor('a string thrown'), 1)
  t.equal(exitCodeFor(null), 1)
})

t.test('--help, <command> --help, --version', async (t) => {
  for (const args of [['--help'], ['-h'], ['help']]) {
    const run = await cli(args)
    t.equal(run.code, 0, `${args.join(' ')}: exit 0`)
    t.match(run.stdout, /^usage: volsync-autorestore <command> \[options\]\n/)
    for (const command of ['serve', 'review', 'catalog', 'certs']) t.match(run.stdout, new RegExp(`\\n  ${command} +\\[`), `${args.join(' ')}: lists ${command}`)
    t.equal(run.stderr, '')
  }
  const none = await cli([])
  t.equal(none.code, 2, 'no command: the usage, exit 2')
  t.match(none.stdout, /^usage: volsync-autorestore <command>/)

  const options: Record<string, string[]> = {
    serve: ['--config FILE', '--kubeconfig FILE'],
    review: ['--config FILE', '--state DIR', '--webhook NAME', '--explain'],
    catalog: ['--config FILE', '--json'],
    certs: ['--out DIR', '--service NAME', '--namespace NS', '--dns NAME', '--ip IP', '--days N'],
  }
  for (const [command, expected] of Object.entries(options)) {
    // --help wins over anything else on the line, even arguments that would fail.
    for (const args of [[command, '--help'], [command, '--frobnicate', '-h', 'extra']]) {
      const run = await cli(args)
      t.equal(run.code, 0, `${args.join(' ')}: exit 0`)
      t.match(run.stdout, new RegExp(`^usage: volsync-autorestore ${command} `), `${args.join(' ')}: the ${command} usage`)
      for (const option of expected) t.ok(run.stdout.includes(`  ${option}`), `${command} --help describes ${option}`)
    }
  }
  const afterTerminator = await cli(['review', ...CONFIG, '--', '--help'])
  t.equal(afterTerminator.code, 2, 'after --, --help is a FILE name')
  t.match(afterTerminator.stderr, /--help: cannot read: ENOENT/)

  const version = await cli(['--version'])
  t.equal(version.code, 0)
  t.equal(version.stdout, `${VERSION}\n`, "package.json's version")
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

t.test('catalog: a source that fails is printed and exits 1', async (t) => {
  // Nothing listens on port 1 of loopback: the S3 client (loaded on this first request) is refused.
  const dir = await tempDir(t, 'catalog-down')
  const config = join(dir, 'config.yaml')
  await writeFile(config, [
    'catalog:',
    '  sources:',
    '    - name: down',
    '      type: s3-prefix',
    '      s3: { endpoint: "http://127.0.0.1:1", bucket: backups, accessKeyId: id, secretAccessKey: not-printed, maxAttempts: 1, requestTimeout: 5s }',
    '',
  ].join('\n'))
  const run = await cli(['catalog', '--config', config])
  t.equal(run.code, 1, 'runtime failure: exit 1')
  t.match(run.stdout, /^error: source down \(s3-prefix\): cannot list s3:\/\/backups\/ at http:\/\/127\.0\.0\.1:1: ECONNREFUSED$/m)
  t.notOk(run.stdout.includes('not-printed'), 'the secret key is not printed')
  t.equal(run.stderr, '')
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
  for (const args of [['--days', '0'], ['--days', '3651'], ['--dns', 'bad name'], ['--service', 'Not_A_Label']]) {
    const rejected = await cli(['certs', '--out', bad, ...args])
    t.equal(rejected.code, 2, `${args.join(' ')}: exit 2`)
    t.match(rejected.stderr, new RegExp(`^volsync-autorestore: ${args[0]}[:/]`), `${args.join(' ')}: names the option`)
  }
  t.strictSame(await readdir(bad), [], 'nothing written on bad usage')
})

t.test('serve --kubeconfig FILE overrides kube.kubeconfig of the config', async (t) => {
  const dir = await tempDir(t, 'serve-kubeconfig')
  const kubeconfig = join(dir, 'kubeconfig')
  await writeFile(kubeconfig, 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n')
  const inConfig = join(dir, 'in-config')
  await writeFile(inConfig, 'apiVersion: v1\nkind: Config\n')
  const config = join(dir, 'config.yaml')
  await writeFile(config, `kube:\n  kubeconfig: ${inConfig}\n  namespace: backups-system\n`)

  const fromFile = serveOptions(['--config', config])
  t.equal(fromFile.config.kube.kubeconfig, inConfig, 'without the flag: the config file says')
  t.equal(fromFile.configFile, config, 'the file stays watched for reloads')
  t.equal(fromFile.kubeconfigFlag, false)
  const overridden = serveOptions(['--config', config, '--kubeconfig', kubeconfig])
  t.equal(overridden.config.kube.kubeconfig, kubeconfig, 'the flag wins over the file')
  t.equal(overridden.config.kube.namespace, 'backups-system', 'the rest of kube.* is kept')
  t.equal(overridden.configFile, config)
  t.equal(overridden.kubeconfigFlag, true)
  // A reload re-reads the file: the flag must still win, or every reload would report kube as changed.
  const reloaded = overridden.override({ ...fromFile.config, pvc: { ...fromFile.config.pvc, destinationName: '{{pvc}}-restore' } })
  t.equal(reloaded.kube.kubeconfig, kubeconfig, 'the flag is applied to a reloaded config too')
  t.equal(reloaded.pvc.destinationName, '{{pvc}}-restore', 'and the reloaded keys are kept')
  t.equal(fromFile.override(fromFile.config), fromFile.config, 'without the flag the file is taken as it is')
  const onDefaults = serveOptions(['--kubeconfig', kubeconfig])
  t.equal(onDefaults.config.kube.kubeconfig, kubeconfig, 'on the built-in defaults too')
  t.equal(onDefaults.configFile, undefined, 'no config file to watch')

  // Through the CLI: a kubeconfig that cannot be read is bad usage, reported before anything starts.
  const missing = await cli(['serve', '--config', config, '--kubeconfig', join(dir, 'nope')])
  t.equal(missing.code, 2)
  t.match(missing.stderr, /^volsync-autorestore: --kubeconfig .*nope: cannot read: ENOENT\n$/)
  const unknown = await cli(['serve', '--kubeconfg', kubeconfig])
  t.equal(unknown.code, 2, 'a misspelt option is usage, too')
  t.match(unknown.stderr, /Unknown option '--kubeconfg'/)
})

// Spawned: what a shell sees, and which modules a command loads. The children run side by side.
t.test('spawned', async (t) => {
  t.jobs = 3

  t.test('--help loads nothing but main.ts; --version; bad usage exits 2', async (t) => {
    const [help, version, bad] = await Promise.all([
      spawnCli(t, ['--help'], { recordModules: true }),
      spawnCli(t, ['--version']),
      spawnCli(t, ['review', '--frobnicate', example('pvc-restore')]),
    ])
    t.equal(help.code, 0, '--help: exit 0')
    t.match(help.stdout, /^usage: volsync-autorestore <command> \[options\]/)
    t.equal(help.stderr, '')
    t.strictSame(loadedFrom(help.modules), { src: ['src/commands/usage-error.ts', 'src/main.ts'], packages: [] }, '--help: main.ts and its exit codes, no package')
    t.equal(version.code, 0)
    t.equal(version.stdout, `${VERSION}\n`)
    t.equal(bad.code, 2, 'unknown option: exit 2')
    t.match(bad.stderr, /^volsync-autorestore: Unknown option '--frobnicate'[^\n]*\n$/, 'one line naming the option')
    t.equal(bad.stdout, '')
  })

  t.test('review on the embedded default loads neither the AWS SDK nor the Kubernetes client', async (t) => {
    const run = await spawnCli(t, ['review', '--explain', example('pvc-wait'), ...CONFIG], { recordModules: true })
    t.equal(run.code, 0, run.stderr)
    t.equal(run.stderr, '')
    const output = JSON.parse(run.stdout) as ReviewResponse & { explain: { decision: string } }
    t.equal(output.explain.decision, 'wait')
    t.match(output.response.warnings, [/sonarr/])
    const { src, packages } = loadedFrom(run.modules)
    t.ok(src.includes('src/commands/review.ts'), 'the review command was loaded (the recorder works)')
    for (const heavy of ['@aws-sdk/client-s3', '@kubernetes/client-node', 'fastify', 'prom-client', 'node-forge']) {
      t.notOk(packages.includes(heavy), `${heavy} not loaded`)
    }
    t.notOk(packages.some((p) => p.startsWith('@aws-sdk/') || p.startsWith('@smithy/')), 'no part of the AWS SDK')
    t.strictSame(src.filter((path) => /^src\/(server|controllers|cluster\/api|tls)\b/.test(path)), [], 'no server, controller, API-server or certificate module')
  })

  t.test('serve with its webhook port in use exits 1 by itself, with the reason', async (t) => {
    const busy = createServer()
    await new Promise<void>((listening) => busy.listen(0, '127.0.0.1', listening))
    t.teardown(() => new Promise<void>((closed) => busy.close(() => closed())))
    const port = (busy.address() as AddressInfo).port
    const dir = await tempDir(t, 'serve-busy')
    const certs = await makeCertificates(dir)
    const yaml = (await exampleConfigYaml({ certs })).replace(/^ {2}port: 0$/m, `  port: ${port}`)
    t.match(yaml, new RegExp(`port: ${port}`))
    await writeFile(join(dir, 'config.yaml'), yaml)
    const run = await spawnCli(t, ['serve', '--config', join(dir, 'config.yaml')], { exitAfter: { stderr: /EADDRINUSE/, graceMs: 3000 } })
    t.match(run.stderr, /EADDRINUSE/, 'the reason is printed')
    t.equal(run.timedOut, false, 'the process exits by itself (within 3 s of the error)')
    t.equal(run.code, 1, 'exit 1: runtime failure')
  })
})
