// Loaded into a spawned CLI with `--import`: records the URL of every module the process loads
// (import and require alike) and writes them, one per line, to $RECORD_LOADED_MODULES at exit.
// The CLI tests use it to check that a command loads only what it needs.
import { writeFileSync } from 'node:fs'
import { registerHooks } from 'node:module'

const loaded: string[] = []
registerHooks({
  load(url, context, nextLoad) {
    loaded.push(url)
    return nextLoad(url, context)
  },
})
const file = process.env.RECORD_LOADED_MODULES
if (file) process.on('exit', () => writeFileSync(file, `${loaded.join('\n')}\n`))
