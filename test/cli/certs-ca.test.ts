// Issue 13 item 8: `certs` run again over a directory that holds a CA reuses it (the caBundle in the
// webhook configurations stays valid, as with cert-manager's issuer), refuses a half or unusable CA
// with exit 2, and replaces it only with --new-ca. In-process through runCli (argv, streams, exit code).
import { X509Certificate } from 'node:crypto'
import { readFileSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { runCli } from '../../src/main.ts'

class Collect extends Writable {
  text = ''
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString('utf8')
    done()
  }
}

async function certs(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Collect()
  const stderr = new Collect()
  const code = await runCli(['certs', ...args], { stdout, stderr, stdin: process.stdin })
  return { code, stdout: stdout.text, stderr: stderr.text }
}

t.test('a second run reuses the CA; --new-ca replaces it; half a CA is refused with exit 2', async (t) => {
  const out = t.testdir()
  const first = await certs(['--out', out])
  t.equal(first.code, 0)
  t.match(first.stdout, /caBundle for the webhook configurations: base64 -w0 .*ca\.crt/)
  const ca = readFileSync(join(out, 'ca.crt'), 'utf8')
  const firstServing = readFileSync(join(out, 'tls.crt'), 'utf8')

  const second = await certs(['--out', out, '--dns', 'webhook.example'])
  t.equal(second.code, 0)
  t.match(second.stdout, /signed by the existing CA in .*ca\.crt \(kept; --new-ca replaces it\)/)
  t.equal(readFileSync(join(out, 'ca.crt'), 'utf8'), ca, 'the CA is the same file')
  const serving = new X509Certificate(readFileSync(join(out, 'tls.crt')))
  t.not(serving.toString(), firstServing, 'a new serving certificate')
  t.ok(serving.verify(new X509Certificate(ca).publicKey), 'signed by the kept CA: the old caBundle verifies it')
  t.equal(serving.checkHost('webhook.example'), 'webhook.example')

  const replaced = await certs(['--out', out, '--new-ca'])
  t.equal(replaced.code, 0)
  t.not(readFileSync(join(out, 'ca.crt'), 'utf8'), ca, '--new-ca writes a new CA')

  unlinkSync(join(out, 'ca.key'))
  const half = await certs(['--out', out])
  t.equal(half.code, 2, 'refused as a usage problem: the user decides')
  t.match(half.stderr, /^volsync-autorestore: .*ca\.crt exists without .*ca\.key: remove both to create a new CA, or pass --new-ca/)
})
