// Issue 13 item 5: a URL with credentials inside an error message never reaches `catalog` output
// (table and --json), `review`'s stderr log, or the CLI's one-line failure; and the one redaction
// function itself (src/redact-url.ts). The commands run in-process.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { catalogCommand } from '../../src/commands/catalog.ts'
import { reviewCommand } from '../../src/commands/review.ts'
import { runCli } from '../../src/main.ts'
import { redactUrl, redactUrlsDeep, redactUrlsIn } from '../../src/redact-url.ts'

class Collect extends Writable {
  text = ''
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString('utf8')
    done()
  }
}

const SECRETS = /AKIAEXAMPLE|wJalrXUtnFEMI|abc123sig/
// A source whose failure message embeds a secret-looking URL (a password file path that holds one).
const SECRET_URL = 's3://AKIAEXAMPLE:wJalrXUtnFEMI@minio:9000/b?X-Amz-Signature=abc123sig'
const dir = await mkdtemp(join(tmpdir(), 'redact-urls-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const config = join(dir, 'config.yaml')
await writeFile(config, `
state: { directory: examples/state }
catalog:
  sources:
    - name: nas
      type: restic
      filesystem: { path: examples/repos/media/jellyfin }
      passwordFile: "/run/secrets/${SECRET_URL}"
`)

t.test('redactUrl / redactUrlsIn / redactUrlsDeep', async (t) => {
  t.equal(redactUrl('http://user:pa@ss@host:9000/x'), 'http://redacted@host:9000/x', 'the last @ ends the userinfo')
  t.equal(redactUrl('https://s3.example.com/b/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F1&X-Amz-Signature=ff&x-amz-security-token=t#f'),
    'https://s3.example.com/b/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=redacted&X-Amz-Signature=redacted&x-amz-security-token=redacted#f')
  t.equal(redactUrl('http://minio:9000'), 'http://minio:9000', 'nothing to redact: unchanged')
  t.equal(redactUrl('not a url'), 'not a url')
  t.equal(redactUrlsIn('cannot list s3://b/ at http://k:s@minio:9000: AccessDenied; retry at https://h/?Signature=x.'),
    'cannot list s3://b/ at http://redacted@minio:9000: AccessDenied; retry at https://h/?Signature=redacted.')
  t.strictSame(redactUrlsDeep({ a: ['http://u:p@h'], b: { c: 'kopia://u:p@h/x' }, n: 1, z: null }), { a: ['http://redacted@h'], b: { c: 'kopia://redacted@h/x' }, n: 1, z: null })
})

t.test('catalog: the table and --json', async (t) => {
  const table = new Collect()
  t.equal(await catalogCommand(['--config', config], table), 1, 'the source failed')
  t.match(table.text, 'error: source nas (restic): cannot read passwordFile /run/secrets/s3://redacted@minio:9000/b?X-Amz-Signature=redacted: ENOENT')
  t.notMatch(table.text, SECRETS)
  const json = new Collect()
  await catalogCommand(['--config', config, '--json'], json)
  t.match(JSON.parse(json.text), { sources: [{ name: 'nas', ok: false, error: /s3:\/\/redacted@minio:9000/ }] })
  t.notMatch(json.text, SECRETS)
})

t.test('review: the catalog failure logged on stderr', async (t) => {
  const out = new Collect()
  const stderr = new Collect()
  await reviewCommand(['--config', config, 'examples/admission/pvc-restore.json'], out, { stderr })
  t.match(stderr.text, /catalog poll failed/, 'the failure is logged')
  t.match(stderr.text, 's3://redacted@minio:9000')
  t.notMatch(stderr.text, SECRETS)
})

t.test('the CLI failure line', async (t) => {
  const stdout = new Collect()
  const stderr = new Collect()
  const missing = `${dir}/${SECRET_URL}.yaml`
  const code = await runCli(['catalog', '--config', missing], { stdout, stderr, stdin: process.stdin })
  t.equal(code, 2)
  t.match(stderr.text, /^volsync-autorestore: .*s3:\/\/redacted@minio:9000/)
  t.notMatch(stderr.text, SECRETS)
})
