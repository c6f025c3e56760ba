// Paths and the benchmark configuration, shared by the parent (bench/admission.ts) and the server
// child (bench/server-child.ts) so both decide from exactly the same settings.
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseConfig } from '../src/config/load.ts'
import type { Config } from '../src/config/schema.ts'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const EXAMPLE_CONFIG = join(ROOT, 'examples', 'config.yaml')
export const EXAMPLE_STATE = join(ROOT, 'examples', 'state')
export const ADMISSION_DIR = join(ROOT, 'examples', 'admission')

/** The review the load test sends: a PVC CREATE that gets the restore decision. */
export const LOAD_REVIEW = 'pvc-restore.json'
/** What the decoded patch of the restore answer must contain. */
export const RESTORE_MARKER = 'jellyfin-dst'

/**
 * As in production: every decision is logged at info (the server child writes its lines to a file
 * the parent gives it, never to the terminal). At warn the line is built but never written, which
 * hid ~66 us per request from the figures (issue 14).
 */
export const BENCH_LOG_LEVEL = 'info'

export function admissionText(file: string): string {
  return readFileSync(join(ADMISSION_DIR, file), 'utf8')
}

export interface TlsFiles {
  readonly certFile: string
  readonly keyFile: string
}

/**
 * examples/config.yaml through parseConfig, then the benchmark's overrides validated by
 * parseConfig again (JSON is YAML), so a typo here fails like a typo in a config file would.
 * Overrides: port 0 (the kernel picks a free port), metrics port 0, loopback only, no dev
 * certificate, the given TLS files, log level BENCH_LOG_LEVEL (info), the example state directory made absolute.
 */
export function benchConfig(tls: TlsFiles): Config {
  const base = parseConfig(readFileSync(EXAMPLE_CONFIG, 'utf8'), EXAMPLE_CONFIG)
  const merged = {
    ...base,
    server: {
      ...base.server,
      host: '127.0.0.1',
      port: 0,
      metricsHost: '127.0.0.1',
      metricsPort: 0,
      devCertificate: false,
      tls: { certFile: tls.certFile, keyFile: tls.keyFile },
    },
    state: { ...base.state, directory: EXAMPLE_STATE },
    log: { ...base.log, level: BENCH_LOG_LEVEL },
  }
  return parseConfig(JSON.stringify(merged), 'benchmark config')
}
