// Offline cluster state: Kubernetes objects in YAML files (multi-document) under one directory,
// re-read when a file changes. A file that fails to parse keeps the last good state.
import { watch, type FSWatcher } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { errorMessage } from '../errors.ts'
import type { Log } from '../log.ts'
import { type LoopHealth, untilAborted } from '../loop.ts'
import type { ClusterState } from '../state/cluster-state.ts'
import { clusterStateFromObjects, type ObjectProblem } from './cluster-objects.ts'

async function yamlFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  return entries
    .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name) && !e.name.startsWith('.'))
    .map((e) => join(e.parentPath, e.name))
    .sort()
}

/** Reads the whole directory once. Throws (with the file name) only when a file is not valid YAML. */
export async function readClusterDirectory(dir: string): Promise<{ state: ClusterState; problems: ObjectProblem[] }> {
  const objects: unknown[] = []
  const where: string[] = []
  for (const file of await yamlFiles(dir)) {
    const text = await readFile(file, 'utf8')
    const docs = parseAllDocuments(text)
    const list = Array.isArray(docs) ? docs : [docs]
    list.forEach((doc, i) => {
      if (doc.errors.length > 0) throw new Error(`${relative(process.cwd(), file)}: document ${i + 1}: ${doc.errors[0]!.message.split('\n')[0]}`)
      objects.push(doc.toJS())
      where.push(`${relative(process.cwd(), file)}#${i + 1}`)
    })
  }
  const result = clusterStateFromObjects(objects, `directory ${dir}`)
  return {
    state: result.state,
    problems: result.problems.map((p) => ({ ...p, where: where[Number(/^object (\d+)/.exec(p.where)?.[1] ?? -1)] ?? p.where })),
  }
}

/** Watches the directory and calls `publish` with every new good state. A Loop (src/loop.ts). */
export class DirectoryClusterSource {
  readonly name = 'cluster'
  readonly leaderOnly = false
  readonly #dir: string
  readonly #log: Pick<Log, 'info' | 'warn'>
  readonly #publish: (state: ClusterState) => void
  #watcher: FSWatcher | undefined
  #timer: NodeJS.Timeout | undefined
  #lastError: string | null = null
  #loaded = false

  constructor(dir: string, publish: (state: ClusterState) => void, log: Pick<Log, 'info' | 'warn'>) {
    this.#dir = dir
    this.#publish = publish
    this.#log = log
  }

  get lastError(): string | null {
    return this.#lastError
  }

  get loaded(): boolean {
    return this.#loaded
  }

  async load(): Promise<void> {
    try {
      const { state, problems } = await readClusterDirectory(this.#dir)
      for (const problem of problems) this.#log.warn(problem, 'ignored an object in the state directory')
      this.#publish(state)
      this.#lastError = null
      this.#loaded = true
      this.#log.info({ directory: this.#dir, replicationDestinations: state.replicationDestinations.size, namespaces: state.namespaces.size }, 'cluster state loaded')
    } catch (error) {
      this.#lastError = errorMessage(error)
      this.#log.warn({ directory: this.#dir, err: error }, 'cluster state directory unreadable; keeping the last good state')
    }
  }

  /** Loop health: loaded once since start; the current read error, if any (the last good state stays). */
  health(): LoopHealth {
    return { name: this.name, loaded: this.#loaded, gatesReadiness: true, error: this.#lastError, lastSuccess: null, waitingFor: `state directory ${this.#dir} not read yet` }
  }

  /** Loop.run: reads the directory, then follows its changes until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    await this.start()
    await untilAborted(signal)
    this.stop()
  }

  /** Reads the directory once, then watches it (debounced re-reads). */
  async start(): Promise<void> {
    await this.load()
    try {
      this.#watcher = watch(this.#dir, { recursive: true }, () => this.#schedule())
      this.#watcher.on('error', (error) => this.#log.warn({ directory: this.#dir, err: error }, 'state directory watch failed'))
    } catch (error) {
      this.#log.warn({ directory: this.#dir, err: error }, 'cannot watch the state directory; changes need a restart')
    }
  }

  #schedule(): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => void this.load(), 100)
  }

  stop(): void {
    clearTimeout(this.#timer)
    this.#watcher?.close()
  }
}
