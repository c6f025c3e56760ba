#!/usr/bin/env node
// argv -> one command; exit codes of design section 3 (0 ok, 1 runtime failure, 2 usage/config).
// Each command is imported only when it runs: its dependencies (Fastify, the AWS SDK, the
// Kubernetes client, node-forge) take seconds to load, and `--help`, `--version` and
// `<command> --help` need none of them.
import { readFile } from 'node:fs/promises'
import { enableCompileCache } from 'node:module'
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './commands/usage-error.ts'

/** Where a command reads and writes: the process's own streams, or buffers in tests. */
export interface CliStreams {
  readonly stdout: NodeJS.WritableStream
  readonly stderr: NodeJS.WritableStream
  readonly stdin: NodeJS.ReadableStream
}

type CommandName = 'serve' | 'review' | 'catalog' | 'certs'

/** Per command: its synopsis (one line in the overview) and its full usage (`<command> --help`). */
const COMMANDS: Readonly<Record<CommandName, { readonly synopsis: string; readonly usage: string }>> = {
  serve: {
    synopsis: 'serve   [--config FILE] [--kubeconfig FILE]              run the webhook (TLS), metrics, health and loops',
    usage: `usage: volsync-autorestore serve [--config FILE] [--kubeconfig FILE]

Runs the TLS webhook (POST /mutate, POST /validate, GET /healthz, GET /readyz) and the plain-HTTP
port (GET /metrics, GET /status) until SIGTERM or SIGINT; reloads the config file and the TLS
certificate when they change.

  --config FILE       the YAML config (default: the built-in defaults)
  --kubeconfig FILE   the API server's kubeconfig; overrides kube.kubeconfig of the config
`,
  },
  review: {
    synopsis: `review  [--config FILE] [--state DIR] [--webhook mutate|validate] [--explain] FILE|-
                                                           print the AdmissionReview response for one request`,
    usage: `usage: volsync-autorestore review [--config FILE] [--state DIR] [--webhook mutate|validate] [--explain] FILE|-

Prints the AdmissionReview response the server would give for one review (FILE, or - for stdin),
offline. A bare Kubernetes object is wrapped as a CREATE review.

  --config FILE       the YAML config (default: the built-in defaults)
  --state DIR         cluster state from the YAML files in DIR (default: state.directory of the config)
  --webhook NAME      mutate (default) or validate
  --explain           add the rule, decision, reasons and decoded patch
`,
  },
  catalog: {
    synopsis: 'catalog [--config FILE] [--json]                         poll every backup source once and print what exists',
    usage: `usage: volsync-autorestore catalog [--config FILE] [--json]

Polls every configured backup source once and prints namespace, pvc, source, kind, snapshots,
newest and size, then per-source warnings and errors. Exit 1 when a source failed.

  --config FILE       the YAML config (default: the built-in defaults)
  --json              print JSON instead of a table
`,
  },
  certs: {
    synopsis: `certs   [--out DIR] [--service NAME] [--namespace NS] [--dns NAME ...] [--ip IP ...] [--days N]
                                                           write a CA and a serving certificate`,
    usage: `usage: volsync-autorestore certs [--out DIR] [--service NAME] [--namespace NS] [--dns NAME ...] [--ip IP ...] [--days N] [--new-ca]

Writes tls.crt and tls.key, signed by the CA already in DIR (ca.crt, ca.key: kept, so a caBundle
made from it stays valid), or by a new CA written there when there is none. The serving certificate
carries the Service's DNS names (svc, svc.ns, svc.ns.svc, svc.ns.svc.cluster.local).

  --out DIR           where to write (default: certs)
  --service NAME      the webhook Service (default: volsync-autorestore)
  --namespace NS      its namespace (default: volsync-system)
  --dns NAME          one more DNS name (repeatable)
  --ip IP             an IP address (repeatable)
  --days N            validity in days, 1 to 3650 (default: 365)
  --new-ca            replace the CA in DIR with a new one (update every caBundle after)
`,
  },
}

const USAGE = `usage: volsync-autorestore <command> [options]

${Object.values(COMMANDS).map((c) => `  ${c.synopsis}`).join('\n')}

  --help, -h                                               this text; <command> --help: its options
  --version                                                the version
`

function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name)
}

/** `--help`/`-h` anywhere before a `--` terminator. */
function asksForHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--')
  return (end === -1 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h')
}

async function packageVersion(): Promise<string> {
  const text = await readFile(new URL('../package.json', import.meta.url), 'utf8')
  return (JSON.parse(text) as { version: string }).version
}

/**
 * Runs one command line. Resolves to the exit code of a command that finished; rejects with what
 * the command threw (map it with `exitCodeFor`). Writes only to `streams`, except `serve`, which
 * logs to the process's stdout and waits for SIGTERM/SIGINT.
 */
export async function dispatch(argv: readonly string[], streams: CliStreams): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined) {
    streams.stdout.write(USAGE)
    return EXIT_USAGE
  }
  if (command === '-h' || command === '--help' || command === 'help') {
    streams.stdout.write(USAGE)
    return EXIT_OK
  }
  if (command === '--version') {
    streams.stdout.write(`${await packageVersion()}\n`)
    return EXIT_OK
  }
  if (!isCommand(command)) throw new UsageError(`unknown command ${JSON.stringify(command)}\n${USAGE}`)
  if (asksForHelp(rest)) {
    streams.stdout.write(COMMANDS[command].usage)
    return EXIT_OK
  }
  switch (command) {
    case 'serve': return (await import('./commands/serve.ts')).serveCommand(rest)
    case 'review': return (await import('./commands/review.ts')).reviewCommand(rest, streams.stdout, { stdin: streams.stdin, stderr: streams.stderr })
    case 'catalog': return (await import('./commands/catalog.ts')).catalogCommand(rest, streams.stdout)
    case 'certs': return (await import('./commands/certs.ts')).certsCommand(rest, streams.stdout)
  }
}

/**
 * The exit code for what a command threw: 2 for bad usage or config (UsageError, and parseArgs'
 * ERR_PARSE_ARGS_* errors for unknown or malformed options), 1 for anything else.
 */
export function exitCodeFor(error: unknown): number {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined
  return error instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) ? EXIT_USAGE : EXIT_FAILURE
}

/** `dispatch`, with a failure printed as one `volsync-autorestore: <message>` line on stderr and mapped to its exit code. */
export async function runCli(argv: readonly string[], streams: CliStreams): Promise<number> {
  try {
    return await dispatch(argv, streams)
  } catch (error) {
    // Imported here, on failure only: --help and --version load nothing but main.ts (test/cli).
    const { errorMessage } = await import('./errors.ts')
    const { redactUrlsIn } = await import('./redact-url.ts')
    streams.stderr.write(`volsync-autorestore: ${redactUrlsIn(errorMessage(error))}\n`)
    return exitCodeFor(error)
  }
}

if (import.meta.main) {
  // Type-stripping and compiling ~100 modules is most of a one-shot command's start: Node's compile
  // cache (os.tmpdir()/node-compile-cache, or $NODE_COMPILE_CACHE; off with
  // NODE_DISABLE_COMPILE_CACHE=1) keeps both across runs. Where it cannot write (a read-only
  // root file system) it reports a status and everything still runs, uncached.
  enableCompileCache()
  void runCli(process.argv.slice(2), process).then((code) => { process.exitCode = code })
}
