// `serve [--config FILE]`: run the webhook until SIGTERM/SIGINT.
import { parseArgs } from 'node:util'
import { createLogger } from '../log.ts'
import { startRuntime } from '../server/runtime.ts'
import { loadConfigOrUsage } from './one-shot-snapshot.ts'
import { EXIT_OK } from './usage-error.ts'

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' } } })
  const config = loadConfigOrUsage(values.config)
  const log = createLogger(config.log.level)
  const runtime = await startRuntime({ config, log, ...(values.config ? { configFile: values.config } : {}) })
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down')
      resolve()
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
  })
  await runtime.close()
  return EXIT_OK
}
