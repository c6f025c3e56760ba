// `catalog [--config FILE] [--json]`: poll every configured source once and print what exists.
import { parseArgs } from 'node:util'
import { createLogger } from '../log.ts'
import { redactUrlsDeep, redactUrlsIn } from '../redact-url.ts'
import type { SourceState } from '../state/catalog-state.ts'
import { loadConfigOrUsage, pollCatalogOnce } from './one-shot-snapshot.ts'
import { EXIT_FAILURE, EXIT_OK } from './usage-error.ts'

function table(sources: readonly SourceState[]): string {
  const rows = [['NAMESPACE', 'PVC', 'SOURCE', 'KIND', 'SNAPSHOTS', 'NEWEST', 'SIZE']]
  for (const source of sources) {
    for (const e of source.entries) {
      rows.push([e.namespace, e.pvc, e.source, e.kind, e.snapshots === null ? '?' : String(e.snapshots), e.newest ?? '-', e.sizeBytes === undefined ? '-' : String(e.sizeBytes)])
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  const lines = rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd())
  for (const source of sources) {
    for (const d of source.diagnostics) lines.push(`warning: source ${source.name}: ${d.message}`)
    if (source.error) lines.push(`error: source ${source.name} (${source.type}): ${source.error}`)
  }
  if (sources.length === 0) lines.push('no catalog sources are configured (catalog.sources)')
  // A source error may embed an endpoint or a presigned URL: printed only through the one redaction.
  return redactUrlsIn(`${lines.join('\n')}\n`)
}

/**
 * `catalog`: polls every configured source once (reading their repositories and password files) and writes
 * a table, or `--json`, to `out`, with each source's diagnostics and error (URLs in them redacted). Resolves EXIT_FAILURE when any
 * source failed, else EXIT_OK; throws UsageError for an invalid config and parseArgs' error for a bad
 * option (both exit 2 in main.ts).
 */
export async function catalogCommand(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' }, json: { type: 'boolean', default: false } } })
  const config = loadConfigOrUsage(values.config)
  const { sources } = await pollCatalogOnce(config, createLogger('silent'))
  if (values.json) {
    out.write(`${JSON.stringify(redactUrlsDeep({
      sources: sources.map((s) => ({ name: s.name, type: s.type, ok: s.error === null, error: s.error, entries: s.entries, diagnostics: s.diagnostics })),
    }), null, 2)}\n`)
  } else {
    out.write(table(sources))
  }
  return sources.some((s) => s.error !== null) ? EXIT_FAILURE : EXIT_OK
}
