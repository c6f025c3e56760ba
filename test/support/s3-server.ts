// A real S3 protocol server on loopback (s3rver in its own process, objects on disk) for tests
// and benchmarks. Seeded with plain PUT bodies: s3rver stores chunk-signed (streaming) uploads wrongly.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative, sep } from 'node:path'
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import type { S3LocationConfig } from '../../src/config/schema.ts'

/** s3rver's one account. */
export const S3RVER_KEY = 'S3RVER'

export class LocalS3 {
  readonly directory: string
  #server: ChildProcess | undefined
  #port = 0
  #client: S3Client | undefined

  private constructor(directory: string) {
    this.directory = directory
  }

  /** `parent`: where the objects live (the benchmark uses tmpfs so the disk does not dominate). */
  static async start(parent: string = tmpdir()): Promise<LocalS3> {
    const s3 = new LocalS3(await mkdtemp(join(parent, 'local-s3-')))
    await s3.resume()
    return s3
  }

  get port(): number {
    return this.#port
  }

  /** The server process (benchmarks read its CPU time); undefined while stopped. */
  get pid(): number | undefined {
    return this.#server?.pid
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.#port}`
  }

  /** Config of a location in this server, as a source would carry it (defaults filled in). */
  location(bucket: string, overrides: Partial<S3LocationConfig> = {}): S3LocationConfig {
    return { endpoint: this.endpoint, bucket, prefix: '', region: 'us-east-1', forcePathStyle: true, accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY, requestTimeout: '5s', maxAttempts: 1, ...overrides }
  }

  #seedClient(): S3Client {
    this.#client ??= new S3Client({
      endpoint: this.endpoint, region: 'us-east-1', forcePathStyle: true,
      credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY },
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
    })
    return this.#client
  }

  async createBucket(bucket: string): Promise<void> {
    await this.#seedClient().send(new CreateBucketCommand({ Bucket: bucket }))
  }

  async put(bucket: string, key: string, body: Buffer | string): Promise<void> {
    await this.#seedClient().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: typeof body === 'string' ? Buffer.from(body) : body }))
  }

  /**
   * Writes objects straight into s3rver's on-disk store (object, metadata and md5 files), for
   * thousands of objects: s3rver's PUT handles about 150 a second. The server then serves them
   * like uploaded ones. The bucket must exist.
   */
  async writeObjects(bucket: string, objects: Iterable<readonly [string, Buffer | string]>, concurrency = 64): Promise<number> {
    const folders = new Map<string, Promise<unknown>>()
    const write = async (key: string, body: Buffer | string) => {
      const base = join(this.directory, bucket, ...key.split('/'))
      const folder = dirname(base)
      if (!folders.has(folder)) folders.set(folder, mkdir(folder, { recursive: true }))
      await folders.get(folder)
      await Promise.all([
        writeFile(`${base}._S3rver_object`, body),
        writeFile(`${base}._S3rver_object.md5`, createHash('md5').update(body).digest('hex')),
        writeFile(`${base}._S3rver_metadata.json`, '{"content-type":"application/octet-stream"}'),
      ])
    }
    const list = [...objects]
    let next = 0
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < list.length) {
        const [key, body] = list[next++]!
        await write(key, body)
      }
    }))
    return list.length
  }

  /** Uploads every file below `directory` to `<prefix><relative path>`. */
  async putTree(bucket: string, prefix: string, directory: string, concurrency = 16): Promise<number> {
    const files = (await readdir(directory, { recursive: true, withFileTypes: true })).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name))
    let next = 0
    const worker = async () => {
      while (next < files.length) {
        const file = files[next++]!
        await this.put(bucket, prefix + relative(directory, file).split(sep).join('/'), await readFile(file))
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    return files.length
  }

  /** Stops serving (an outage); objects stay on disk. */
  async stop(): Promise<void> {
    this.#client?.destroy()
    this.#client = undefined
    const child = this.#server
    this.#server = undefined
    if (child && child.exitCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  }

  /** Serves again on the same port with the same objects. */
  async resume(): Promise<void> {
    if (this.#server) return
    const script = new URL('./s3rver-process.ts', import.meta.url).pathname
    const child = spawn(process.execPath, ['--openssl-legacy-provider', script, this.directory, String(this.#port)], { stdio: ['ignore', 'pipe', 'inherit'] })
    this.#server = child
    const lines = createInterface({ input: child.stdout! })
    const exited = once(child, 'exit').then(([code]) => { throw new Error(`s3rver exited with ${String(code)} before listening`) })
    const [line] = await Promise.race([once(lines, 'line'), exited]) as [string]
    this.#port = (JSON.parse(line) as { port: number }).port
  }

  async close(): Promise<void> {
    await this.stop()
    await rm(this.directory, { recursive: true, force: true })
  }
}
