// Movers of the VolSync fork v0.15.43-v0.16.10 stripped the trailing slash of an S3 prefix, so a
// repository for s3://bucket/volsync/app sits at volsync/appkopia.repository. Movers from
// v0.16.11 look under volsync/app/, find nothing, and create a new, empty repository whose
// restores "succeed" empty (volsync-reference.md, S3 prefix history). The catalog notices such
// objects; this rule warns on the Secret that points there.
import type { CatalogDiagnostic } from '../../state/catalog-state.ts'
import type { Snapshot } from '../../state/snapshot.ts'
import type { AdmissionInput } from '../decision.ts'
import { parseKopiaRepository } from '../kopia-repository.ts'
import { isKopiaSecret, readSecretValues } from '../volsync-objects.ts'
import { describeObject, isSecretRequest, type Finding } from './finding.ts'

/** The S3 bucket and prefix the mover reads (parseKopiaRepository); null at the bucket root, where no prefix can lose its slash. */
function s3Location(values: ReadonlyMap<string, string | null>): { bucket: string; prefix: string } | null {
  const target = parseKopiaRepository(values)
  return target !== null && 's3' in target && target.s3.prefix !== '' ? target.s3 : null
}

function findStripped(snapshot: Snapshot, where: { bucket: string; prefix: string }): { source: string; diagnostic: CatalogDiagnostic } | null {
  for (const source of snapshot.catalog.sources) {
    for (const diagnostic of source.diagnostics) {
      if (diagnostic.code === 'kopia-prefix-without-slash' && diagnostic.s3?.bucket === where.bucket && diagnostic.s3.prefix === where.prefix) {
        return { source: source.name, diagnostic }
      }
    }
  }
  return null
}

/**
 * Finding `kopiaPrefixSlash` for a Kopia Secret whose S3 prefix a catalog source found only without its
 * trailing slash (diagnostic `kopia-prefix-without-slash` on the same bucket and prefix). Reads the
 * Secret's values and `snapshot.catalog` diagnostics; the message names the location, never a Secret
 * value.
 */
export function checkKopiaPrefixSlash(snapshot: Snapshot, input: AdmissionInput, _now: number): Finding[] {
  if (!isSecretRequest(input) || !input.object) return []
  const values = readSecretValues(input.object)
  if (!isKopiaSecret(values)) return []
  const where = s3Location(values)
  if (!where) return []
  const found = findStripped(snapshot, where)
  if (!found) return []
  const base = `s3://${where.bucket}/${where.prefix}`
  return [{
    rule: 'kopiaPrefixSlash',
    message: `${describeObject(input)}: catalog source ${found.source} found a Kopia repository at ${base}kopia.repository (written by a VolSync mover v0.15.43-v0.16.10, which dropped the prefix's trailing slash) but none at ${base}/kopia.repository; current movers look only at ${base}/, will create a new, empty repository there, and restore nothing. Move the repository's objects under ${base}/ before the next backup or restore.`,
  }]
}
