// `serve [--config FILE] [--kubeconfig FILE]`: run the webhook until SIGTERM/SIGINT.
import { accessSync, constants } from 'node:fs'
import { parseArgs } from 'node:util'
import type { Config } from '../config/schema.ts'
import { createLogger } from '../log.ts'
import { startRuntime } from '../server/runtime.ts'
import { loadConfigOrUsage } from './one-shot-snapshot.ts'
import { EXIT_OK, UsageError } from './usage-error.ts'

/** What `serve` starts the runtime with. */
export interface ServeOptions {
  readonly config: Config
  /** The config file to watch for reloads; absent when serving the built-in defaults. */
  readonly configFile?: string
  /** `--kubeconfig` was given. */
  readonly kubeconfigFlag: boolean
  /** Command-line options over a config read from the file: at start and on every reload. */
  readonly override: (fromFile: Config) => Config
}

/**
 * argv -> the config `serve` runs: the loaded file (or the defaults) with `--kubeconfig` in place
 * of `kube.kubeconfig`. Throws UsageError for an unknown option, an invalid config, or a
 * `--kubeconfig` file that cannot be read. Reads the files; starts nothing.
 */
export function serveOptions(argv: string[]): ServeOptions {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' }, kubeconfig: { type: 'string' } } })
  const kubeconfig = values.kubeconfig
  if (kubeconfig !== undefined) {
    try {
      accessSync(kubeconfig, constants.R_OK)
    } catch (error) {
      throw new UsageError(`--kubeconfig ${kubeconfig}: cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
    }
  }
  const override = (fromFile: Config): Config => (kubeconfig === undefined ? fromFile : { ...fromFile, kube: { ...fromFile.kube, kubeconfig } })
  const config = override(loadConfigOrUsage(values.config))
  const kubeconfigFlag = kubeconfig !== undefined
  return values.config ? { config, configFile: values.config, kubeconfigFlag, override } : { config, kubeconfigFlag, override }
}

/**
 * `serve`: resolves to 0 after SIGTERM/SIGINT and a clean shutdown; rejects when the runtime cannot start.
 * The first signal drains (server.shutdown.drainPeriod: /readyz 503, requests still answered) and then
 * closes by server.shutdown.timeout; a second signal skips what is left of the drain.
 */
export async function serveCommand(argv: string[]): Promise<number> {
  const { config, configFile, kubeconfigFlag, override } = serveOptions(argv)
  const log = createLogger(config.log.level)
  if (kubeconfigFlag && config.state.directory !== undefined) {
    log.warn({ kubeconfig: config.kube.kubeconfig, stateDirectory: config.state.directory }, 'state.directory is set: cluster state comes from that directory, the kubeconfig is not used')
  }
  const runtime = await startRuntime({ config, log, override, ...(configFile !== undefined ? { configFile } : {}) })
  let signals = 0
  let stop: (signal: NodeJS.Signals) => void = () => {}
  const stopping = new Promise<void>((resolve) => {
    stop = (signal) => {
      signals++
      log.info({ signal, drainPeriod: config.server.shutdown.drainPeriod, timeout: config.server.shutdown.timeout }, signals === 1 ? 'shutting down' : 'shutting down now: the drain is cut short')
      if (signals === 1) resolve()
      else void runtime.close()
    }
  })
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  await stopping
  await runtime.drain()
  await runtime.close()
  process.off('SIGTERM', stop)
  process.off('SIGINT', stop)
  log.info({}, 'stopped')
  return EXIT_OK
}
