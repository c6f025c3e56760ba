// A Kopia repository a source keeps open across polls, and the OpenedRepository the password-check
// rule sees for it (the same object for as long as it stays open).
import { FlatLayout } from '../kopia/blob-layout.ts'
import { KopiaRepository } from '../kopia/repository.ts'
import type { OpenedRepository } from '../state/catalog-state.ts'
import type { BlobStore } from '../storage/blob-store.ts'

export interface OpenedKopia {
  readonly password: string
  readonly repository: KopiaRepository
  readonly reference: OpenedRepository
}

export interface KopiaWhere {
  readonly s3?: { readonly bucket: string; readonly prefix: string }
  readonly filesystem?: string
}

/** Opens with the password; on S3 the layout is always flat, so nothing is probed for it. */
export async function openKopia(store: BlobStore, password: string, where: KopiaWhere, signal: AbortSignal): Promise<OpenedKopia> {
  const repository = await KopiaRepository.open(store, password, { signal, ...(where.s3 ? { layout: new FlatLayout(store) } : {}) })
  const reference: OpenedRepository = Object.freeze({
    kind: 'kopia' as const,
    ...where,
    location: repository.location,
    passwordVerdict: (candidate: string) => repository.checkPassword(candidate),
  })
  return { password, repository, reference }
}
