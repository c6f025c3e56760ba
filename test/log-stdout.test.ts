// The server's stdout logger gathers lines into batches (STDOUT_LOG_WRITES): a line must still reach
// stdout on its own within the flush interval, and every gathered line must be written when the
// process exits. Real processes: what reaches a process's stdout is what is tested.
import { spawn } from 'node:child_process'
import t from 'tap'
import { STDOUT_LOG_WRITES } from '../src/log.ts'

const LOG_MODULE = new URL('../src/log.ts', import.meta.url).href

/** Runs `body` (a module body with `log` in scope) in a child; resolves with its stdout lines once `until` holds or it exits. */
function child(body: string, until: (lines: readonly Record<string, unknown>[]) => boolean): Promise<{ lines: Record<string, unknown>[]; exitCode: number | null; kill(): void }> {
  const source = `import { createLogger } from ${JSON.stringify(LOG_MODULE)}\nconst log = createLogger('info')\n${body}`
  const proc = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['ignore', 'pipe', 'inherit'] })
  let text = ''
  // Complete lines only: a chunk may end inside one.
  const lines = () => text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`no expected output within 10 s: ${JSON.stringify(text)}`)) }, 10_000)
    const done = (exitCode: number | null) => { clearTimeout(timer); resolve({ lines: lines(), exitCode, kill: () => proc.kill('SIGKILL') }) }
    proc.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8')
      if (until(lines())) done(null)
    })
    proc.on('exit', (code) => done(code))
    proc.on('error', reject)
  })
}

t.test('a lone line reaches stdout while the process keeps running (flush interval, not batch size)', async (t) => {
  t.ok(STDOUT_LOG_WRITES.FLUSH_MS <= 1000, 'the interval is short')
  const run = await child("log.info({ decision: 'restore' }, 'admission decision')\nsetInterval(() => {}, 1000)", (lines) => lines.length >= 1)
  run.kill()
  t.equal(run.exitCode, null, 'seen before the process ended')
  t.match(run.lines, [{ msg: 'admission decision', decision: 'restore' }])
})

t.test('lines gathered but not yet written are written when the process exits', async (t) => {
  const run = await child("for (let i = 0; i < 25; i++) log.info({ i }, 'line')\nprocess.exit(0)", () => false)
  t.equal(run.exitCode, 0)
  t.same(run.lines.map((l) => l.i), Array.from({ length: 25 }, (_, i) => i), 'all 25, in order')
})

t.test('many lines at once are all written, in order, in batches', async (t) => {
  const n = 2000
  const run = await child(`for (let i = 0; i < ${n}; i++) log.info({ i, pad: 'x'.repeat(200) }, 'line')\nsetInterval(() => {}, 1000)`, (lines) => lines.length >= n)
  run.kill()
  t.equal(run.lines.length, n)
  t.ok(run.lines.every((l, i) => l.i === i), 'in order, none lost')
})

t.test('behind a reader that never reads, lines past the bound are dropped, said on stderr, and the event loop keeps running', async (t) => {
  const source = `import { createLogger } from ${JSON.stringify(LOG_MODULE)}
const log = createLogger('info')
const pad = 'x'.repeat(1000)
for (let i = 0; i < 20000; i++) log.info({ i, pad }, 'line')
let ticks = 0
setInterval(() => { if (++ticks === 20) process.stderr.write('{"msg":"loop alive"}\\n') }, 50)`
  // stdout is a pipe nobody reads: the kernel's pipe buffer fills at once.
  const proc = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['ignore', 'pipe', 'pipe'] })
  proc.stdout.pause()
  let stderr = ''
  const seen = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 20_000)
    proc.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8')
      if (stderr.includes('dropped') && stderr.includes('loop alive')) { clearTimeout(timer); resolve(true) }
    })
  })
  proc.kill('SIGKILL')
  t.ok(seen, `stderr said the drop and the loop kept running: ${stderr.slice(0, 300)}`)
  const report = stderr.split('\n').find((l) => l.includes('dropped'))
  t.match(JSON.parse(report ?? '{}') as Record<string, unknown>, { level: 40, dropped: Number, msg: /stdout's reader is stalled/ })
})
