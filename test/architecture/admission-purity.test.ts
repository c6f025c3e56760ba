// The house rule "admission/ is pure", checked on the import graph: every module the admission
// rules reach (transitively, static imports) is listed, and none of them may be able to start
// work: no file, network, process or thread API, no Kubernetes or S3 client, no key derivation.
import { readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { globSync } from 'node:fs'
import t from 'tap'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
// `import type` is erased before the code runs, so it cannot start anything: not followed.
const IMPORT = /^\s*(?:import|export)\s(?!type\s)[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm

/** What a module imports, as resolved file paths (relative imports) or package names. */
function importsOf(file: string): { files: string[]; packages: string[]; dynamic: boolean } {
  const text = readFileSync(file, 'utf8')
  const files: string[] = []
  const packages: string[] = []
  for (const match of text.matchAll(IMPORT)) {
    const target = match[1] ?? match[2]!
    if (target.startsWith('.')) files.push(resolve(dirname(file), target))
    else packages.push(target)
  }
  return { files, packages, dynamic: /\bimport\(/.test(text) }
}

function reachable(entries: readonly string[]): Map<string, ReturnType<typeof importsOf>> {
  const seen = new Map<string, ReturnType<typeof importsOf>>()
  const queue = [...entries]
  while (queue.length > 0) {
    const file = queue.pop()!
    if (seen.has(file)) continue
    const imports = importsOf(file)
    seen.set(file, imports)
    queue.push(...imports.files)
  }
  return seen
}

/** Packages that can do I/O or start background work. */
const FORBIDDEN_PACKAGES = /^(node:)?(fs|fs\/promises|http|https|http2|net|tls|dgram|dns|child_process|worker_threads|cluster|timers|timers\/promises)$|^@kubernetes\/|^@aws-sdk\/|^@smithy\/|^fastify|^pino|^prom-client/
/** Our own modules that start work (derivations on the threadpool, blob reads, loops). */
const FORBIDDEN_MODULES = /^src\/(kopia|restic|storage|catalog|cluster|controllers|server|commands|tls)\//

t.test('everything admission/ reaches is pure', async (t) => {
  const entries = globSync('src/admission/**/*.ts', { cwd: ROOT }).map((f) => join(ROOT, f))
  t.ok(entries.length > 10, `found the admission modules (${entries.length})`)
  const graph = reachable(entries)
  const problems: string[] = []
  for (const [file, imports] of graph) {
    const name = relative(ROOT, file)
    if (FORBIDDEN_MODULES.test(name)) problems.push(`${name} is reached from admission/`)
    for (const p of imports.packages) if (FORBIDDEN_PACKAGES.test(p)) problems.push(`${name} imports ${p}`)
    if (imports.dynamic) problems.push(`${name} has a dynamic import()`)
  }
  t.strictSame(problems, [], `no module of ${graph.size} reached can start work`)
})

t.test('the check itself catches an impure import', async (t) => {
  t.ok(FORBIDDEN_PACKAGES.test('node:fs/promises'))
  t.ok(FORBIDDEN_PACKAGES.test('@kubernetes/client-node'))
  t.notOk(FORBIDDEN_PACKAGES.test('node:crypto'), 'a synchronous hash is pure')
  t.ok(FORBIDDEN_MODULES.test('src/kopia/key-derivation.ts'))
  const graph = reachable([join(ROOT, 'src/server/runtime.ts')])
  t.ok([...graph.keys()].some((f) => FORBIDDEN_MODULES.test(relative(ROOT, f))), 'the runtime, which does start work, would fail it')
})
