// Reloads the config file when it changes. A mounted ConfigMap changes by swapping a `..data`
// symlink in the directory, so the directory is watched, with a slow poll as a fallback.
import { watch, type FSWatcher } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { toError } from '../errors.ts'
import { concernsWatchedFiles } from '../watched-files.ts'
import { parseConfig } from './load.ts'
import type { Config } from './schema.ts'

export interface ConfigWatchEvents {
  /** A new valid config that differs from the current one. */
  changed(config: Config): void
  /**
   * The file changed but is invalid (or unreadable): the last good config stays. `error.message`
   * is the one line for status (also lastError); its cause, when any, the read or parse failure.
   */
  rejected(error: Error): void
}

/**
 * Watches the config file from `start` until `stop`: on a change (fs events on its directory, debounced
 * 100 ms, and a poll every `pollMs`) it re-reads and re-validates it, and calls `changed` with a new
 * config that differs deeply from the current one, or `rejected` once per distinct error (unreadable,
 * empty, invalid), keeping the last good config. Reads the file; writes nothing.
 */
export class ConfigWatcher {
  readonly #file: string
  readonly #events: ConfigWatchEvents
  #current: Config
  #lastText: string | undefined
  #lastError: string | null = null
  #watcher: FSWatcher | undefined
  #debounce: NodeJS.Timeout | undefined
  #poll: NodeJS.Timeout | undefined

  constructor(file: string, initial: Config, events: ConfigWatchEvents) {
    this.#file = file
    this.#current = initial
    this.#events = events
  }

  get lastError(): string | null {
    return this.#lastError
  }

  async start(pollMs = 10_000): Promise<void> {
    this.#lastText = await readFile(this.#file, 'utf8').catch(() => undefined)
    const names = new Set([basename(this.#file)])
    try {
      this.#watcher = watch(dirname(this.#file), (_event, changed) => {
        if (concernsWatchedFiles(changed, names)) this.#schedule()
      })
      this.#watcher.on('error', () => undefined)
    } catch {
      // fs.watch is unavailable on some filesystems: the poll below still notices changes.
    }
    this.#poll = setInterval(() => void this.check(), pollMs)
    this.#poll.unref()
  }

  #schedule(): void {
    clearTimeout(this.#debounce)
    this.#debounce = setTimeout(() => void this.check(), 100)
  }

  /** Re-reads the file now. Exposed so tests need not wait for fs events. */
  async check(): Promise<void> {
    let text: string
    try {
      text = await readFile(this.#file, 'utf8')
    } catch (error) {
      // Forget the last text: when the same good file comes back, it must be re-read and the error cleared.
      this.#lastText = undefined
      return this.#reject(new Error(`${this.#file}: cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error }))
    }
    if (text === this.#lastText) return
    this.#lastText = text
    // A truncated write or an emptied ConfigMap key would otherwise mean "all defaults": no
    // catalog sources, so restores would silently stop.
    if (!/^[ \t]*[^#\s]/m.test(text)) return this.#reject(new Error(`${this.#file}: the file is empty; the last good config stays in force`))
    let next: Config
    try {
      next = parseConfig(text, this.#file)
    } catch (error) {
      return this.#reject(toError(error))
    }
    this.#lastError = null
    if (isDeepStrictEqual(next, this.#current)) return
    this.#current = next
    this.#events.changed(next)
  }

  #reject(error: Error): void {
    if (error.message === this.#lastError) return
    this.#lastError = error.message
    this.#events.rejected(error)
  }

  stop(): void {
    clearTimeout(this.#debounce)
    clearInterval(this.#poll)
    this.#watcher?.close()
  }
}
