// The Kopia mover strips "http://" from the S3 endpoint and dials HTTPS unless
// KOPIA_S3_DISABLE_TLS or AWS_S3_DISABLE_TLS is exactly "true" (entry.sh; volsync-reference.md
// 4.1, pitfall 3): an http:// endpoint without the flag fails every backup and restore.
import type { Snapshot } from '../../state/snapshot.ts'
import type { AdmissionInput } from '../decision.ts'
import { isKopiaSecret, readSecretValues } from '../volsync-objects.ts'
import { describeObject, isSecretRequest, type Finding } from './finding.ts'

const TLS_FLAGS = ['KOPIA_S3_DISABLE_TLS', 'AWS_S3_DISABLE_TLS'] as const

/** entry.sh: `${KOPIA_S3_ENDPOINT:-${AWS_S3_ENDPOINT}}`, so an empty KOPIA_S3_ENDPOINT falls through. */
function endpointOf(values: ReadonlyMap<string, string | null>): { readonly key: string; readonly url: string } | null {
  for (const key of ['KOPIA_S3_ENDPOINT', 'AWS_S3_ENDPOINT']) {
    const url = values.get(key)
    if (url) return { key, url }
  }
  return null
}

/** S3 per entry.sh (KOPIA_S3_BUCKET or an s3:// URL); a Secret without KOPIA_REPOSITORY cannot be told apart, so counts. */
function mayBeS3(values: ReadonlyMap<string, string | null>): boolean {
  const repository = values.get('KOPIA_REPOSITORY')
  return Boolean(values.get('KOPIA_S3_BUCKET')) || !repository || repository.startsWith('s3://')
}

/**
 * The endpoint is not secret, but a URL may carry user:password@ (never shown), and a warning is
 * one short line: cut at the first whitespace and at 200 characters.
 */
function displayEndpoint(url: string): string {
  const line = url.split(/[\s\u0000-\u001f]/, 1)[0] ?? ''
  const shown = line.replace(/^(http:\/\/)[^/?#]*@/, '$1<redacted>@')
  return shown.length > 200 ? `${shown.slice(0, 200)}...` : shown
}

/**
 * Finding `s3PlainHttp` for a Kopia S3 Secret with an `http://` endpoint and neither KOPIA_S3_DISABLE_TLS
 * nor AWS_S3_DISABLE_TLS exactly "true". The message shows the endpoint with any userinfo redacted, and
 * only the key names of a near-miss flag.
 */
export function checkS3PlainHttp(_snapshot: Snapshot, input: AdmissionInput, _now: number): Finding[] {
  if (!isSecretRequest(input) || !input.object) return []
  const values = readSecretValues(input.object)
  if (!isKopiaSecret(values) || !mayBeS3(values)) return []
  const endpoint = endpointOf(values)
  // entry.sh's sed strips only a lowercase scheme: match exactly what it treats as plain HTTP.
  if (!endpoint || !endpoint.url.startsWith('http://')) return []
  if (TLS_FLAGS.some((flag) => values.get(flag) === 'true')) return []
  // Only the key names of a near miss ("True", "1"), never its value: no Secret value but the endpoint goes out.
  const nearMiss = TLS_FLAGS.filter((flag) => values.has(flag))
  const why = nearMiss.length > 0 ? ` (${nearMiss.join(' and ')} ${nearMiss.length > 1 ? 'are' : 'is'} set, but only the exact string "true" disables TLS)` : ''
  return [{
    rule: 's3PlainHttp',
    message: `${describeObject(input)}: ${endpoint.key} is the plain-HTTP endpoint ${displayEndpoint(endpoint.url)} but neither KOPIA_S3_DISABLE_TLS nor AWS_S3_DISABLE_TLS is "true"${why}; the Kopia mover strips "http://" and connects with HTTPS, so every backup and restore fails. Add KOPIA_S3_DISABLE_TLS: "true", or use an https:// endpoint.`,
  }]
}
