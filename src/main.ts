#!/usr/bin/env node
// argv -> one command; exit codes of design section 3 (0 ok, 1 runtime failure, 2 usage/config).
import { catalogCommand } from './commands/catalog.ts'
import { certsCommand } from './commands/certs.ts'
import { reviewCommand } from './commands/review.ts'
import { serveCommand } from './commands/serve.ts'
import { EXIT_FAILURE, EXIT_USAGE, UsageError } from './commands/usage-error.ts'

const USAGE = `usage: volsync-autorestore <command> [options]

  serve   [--config FILE]                                  run the webhook (TLS), metrics, health and loops
  review  [--config FILE] [--state DIR] [--webhook mutate|validate] [--explain] FILE|-
                                                           print the AdmissionReview response for one request
  catalog [--config FILE] [--json]                         poll every backup source once and print what exists
  certs   [--out DIR] [--service NAME] [--namespace NS] [--dns NAME ...] [--ip IP ...] [--days N]
                                                           write a CA and a serving certificate
`

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve': return serveCommand(rest)
    case 'review': return reviewCommand(rest, process.stdout)
    case 'catalog': return catalogCommand(rest, process.stdout)
    case 'certs': return certsCommand(rest, process.stdout)
    case undefined: case '-h': case '--help': case 'help':
      process.stdout.write(USAGE)
      return command === undefined ? EXIT_USAGE : 0
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}\n${USAGE}`)
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code },
  (error: unknown) => {
    // parseArgs reports unknown or malformed options with ERR_PARSE_ARGS_* codes: that is usage, too.
    const code = (error as { code?: unknown }).code
    const usage = error instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))
    process.stderr.write(`volsync-autorestore: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exitCode = usage ? EXIT_USAGE : EXIT_FAILURE
  },
)
