// A real browser for page tests: Debian's chromium, one headless run per call, with a fresh
// profile, a hard timeout, and everything it started killed and removed afterwards.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const CHROMIUM = '/usr/bin/chromium'

/** For tap's `skip`: false when chromium can run, else why not. */
export function chromiumSkipReason(): string | false {
  return existsSync(CHROMIUM) ? false : 'chromium not installed (apt-get install chromium); .ci/run installs it'
}

/** Quiet, offline, no state kept: nothing but the page under test talks to the network. */
const BASE_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--no-default-browser-check',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-extensions',
  // The Debian wrapper's /dev/shm size check can fail in containers; /tmp always works.
  '--disable-dev-shm-usage', '--mute-audio',
]

export interface BrowserOptions {
  /** Kill the browser (and its helpers) after this long. */
  readonly timeoutMs?: number
}

/** Runs chromium with `args` plus a fresh profile; resolves with its stdout when it exits 0. */
async function runChromium(args: readonly string[], options: BrowserOptions): Promise<string> {
  const profile = await mkdtemp(join(tmpdir(), 'vsar-chromium-'))
  const timeoutMs = options.timeoutMs ?? 60_000
  // detached: its own process group, so the renderer and GPU helpers die with it.
  const child = spawn(CHROMIUM, [...BASE_ARGS, `--user-data-dir=${profile}`, ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  const killGroup = (): void => {
    if (child.pid === undefined) return
    try {
      process.kill(-child.pid, 'SIGKILL')
    } catch {
      // ESRCH: already gone.
    }
  }
  const stdout: Buffer[] = []
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000)
  })
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        killGroup()
        reject(new Error(`chromium did not finish within ${timeoutMs} ms; stderr tail: ${stderr.slice(-1000)}`))
      }, timeoutMs)
      child.on('error', (error) => {
        clearTimeout(timer)
        reject(error)
      })
      child.on('close', (code, signal) => {
        clearTimeout(timer)
        if (code === 0) resolve(Buffer.concat(stdout).toString('utf8'))
        else reject(new Error(`chromium exited with ${code ?? signal}; stderr tail: ${stderr.slice(-1000)}`))
      })
    })
  } finally {
    killGroup()
    await rm(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 })
  }
}

/** The DOM after the page loaded, as chromium serializes it (`--dump-dom`). */
export function dumpDom(url: string, options: BrowserOptions = {}): Promise<string> {
  return runChromium(['--dump-dom', url], options)
}

/** A PNG of the page at the given window size (`--screenshot`). */
export async function screenshot(url: string, options: BrowserOptions & { readonly width?: number; readonly height?: number } = {}): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'vsar-screenshot-'))
  try {
    const file = join(dir, 'page.png')
    await runChromium([`--screenshot=${file}`, `--window-size=${options.width ?? 1200},${options.height ?? 900}`, '--hide-scrollbars', url], options)
    return await readFile(file)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' }

/** Text of serialized markup: tags dropped, entities decoded, whitespace collapsed. */
export function textOf(markup: string): string {
  return decodeEntities(markup.replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim()
}

export function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name: string) => {
    if (name.startsWith('#x') || name.startsWith('#X')) return String.fromCodePoint(parseInt(name.slice(2), 16))
    if (name.startsWith('#')) return String.fromCodePoint(Number(name.slice(1)))
    return ENTITIES[name] ?? whole
  })
}

/** The serialized element that starts at the first match of `open` (e.g. `<section id="pvcs"`), up to its `</tag>`. */
export function elementAt(dom: string, open: string, tag: string): string | undefined {
  const start = dom.indexOf(open)
  if (start < 0) return undefined
  const end = dom.indexOf(`</${tag}>`, start)
  return end < 0 ? undefined : dom.slice(start, end + tag.length + 3)
}
