// `review [--config FILE] [--state DIR] [--webhook mutate|validate] [--explain] FILE|-`:
// the server's decision for one AdmissionReview, offline.
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import type { Webhook } from '../admission/webhooks.ts'
import { handleReview } from '../admission/handle.ts'
import { patchOperations } from '../admission/review.ts'
import { createLogger } from '../log.ts'
import type { CatalogState } from '../state/catalog-state.ts'
import { loadConfigOrUsage, oneShotSnapshot } from './one-shot-snapshot.ts'
import { EXIT_OK, UsageError } from './usage-error.ts'

async function readInput(path: string, stdin: NodeJS.ReadableStream): Promise<string> {
  if (path === '-') {
    const chunks: Buffer[] = []
    for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
    return Buffer.concat(chunks).toString('utf8')
  }
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    throw new UsageError(`${path}: cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
  }
}

/** A bare Kubernetes object (what `kubectl get -o json` prints) is wrapped as a CREATE review. */
export function wrapBareObject(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value
  const object = value as Record<string, unknown>
  if (object.kind === 'AdmissionReview' || typeof object.apiVersion !== 'string' || typeof object.kind !== 'string') return value
  const [group, version] = object.apiVersion.includes('/') ? object.apiVersion.split('/', 2) : ['', object.apiVersion]
  const metadata = (object.metadata ?? {}) as { name?: unknown; namespace?: unknown }
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '00000000-0000-0000-0000-000000000000',
      kind: { group, version, kind: object.kind },
      operation: 'CREATE',
      name: typeof metadata.name === 'string' ? metadata.name : '',
      namespace: typeof metadata.namespace === 'string' ? metadata.namespace : 'default',
      object,
      oldObject: null,
      dryRun: true,
    },
  }
}

/**
 * How the catalog behind an --explain was read: `exact` when every entry came from reading its snapshots;
 * otherwise `listing`, with which figures that means (review never decrypts per-PVC restic repositories).
 */
export function catalogReadOf(catalog: CatalogState): { readonly read: 'exact' | 'listing'; readonly note?: string } {
  const listed = catalog.sources.flatMap((s) => s.entries).filter((e) => e.exact === false).length
  if (listed === 0) return { read: 'exact' }
  return {
    read: 'listing',
    note: `${listed} restic ${listed === 1 ? 'repository was' : 'repositories were'} decided from ${listed === 1 ? 'its' : 'their'} listing, not decrypted: a snapshot file proves a backup; counts are snapshot files and "newest" is the newest one's upload time. \`catalog\` reads exact times and sizes.`,
  }
}

/** Where `review` reads `-` from and logs to (the process's stdin and stderr unless given). */
export interface ReviewStreams {
  readonly stdin?: NodeJS.ReadableStream
  readonly stderr?: NodeJS.WritableStream
}

/**
 * `review`: writes the AdmissionReview response (JSON) to `out` and resolves to 0. Throws UsageError
 * for bad arguments, an unreadable or invalid input, an invalid config or --state directory.
 */
export async function reviewCommand(argv: string[], out: NodeJS.WritableStream, streams: ReviewStreams = {}): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      state: { type: 'string' },
      webhook: { type: 'string', default: 'mutate' },
      explain: { type: 'boolean', default: false },
    },
  })
  if (positionals.length !== 1) throw new UsageError('review: give exactly one FILE (or - for stdin)')
  if (values.webhook !== 'mutate' && values.webhook !== 'validate') throw new UsageError('--webhook: must be mutate or validate')
  const webhook: Webhook = values.webhook
  const config = loadConfigOrUsage(values.config)
  const log = createLogger(config.log.level === 'info' ? 'warn' : config.log.level, streams.stderr ?? process.stderr)
  const text = await readInput(positionals[0]!, streams.stdin ?? process.stdin)
  let body: unknown
  try {
    body = wrapBareObject(JSON.parse(text))
  } catch {
    throw new UsageError(`${positionals[0]}: not JSON (an AdmissionReview or a Kubernetes object)`)
  }
  // A snapshot file proves a restic backup: the decision needs no key derivation (~0.3 s per repository).
  const snapshot = await oneShotSnapshot(config, values.state, log, { resticFromListing: true })
  const result = handleReview(webhook, snapshot, body, Date.now())
  if (!result.ok) throw new UsageError(result.error)
  const output: Record<string, unknown> = { ...result.review }
  if (values.explain) {
    output.explain = {
      rule: result.decision.rule,
      decision: result.decision.outcome,
      reasons: result.decision.reasons,
      warnings: result.decision.warnings,
      ...(result.decision.denial ? { denial: result.decision.denial } : {}),
      mode: snapshot.config.mode,
      catalog: catalogReadOf(snapshot.catalog),
      patch: snapshot.config.mode === 'audit' ? [] : patchOperations(result.input, result.decision),
    }
  }
  out.write(`${JSON.stringify(output, null, 2)}\n`)
  return EXIT_OK
}
