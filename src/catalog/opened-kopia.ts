// A Kopia repository a source keeps open across polls, and the OpenedRepository (plain data) the
// password-check rule and the verdict queue see for it: the same object for as long as it stays open.
import { createHash } from 'node:crypto'
import type { FormatBlob } from '../kopia/format-blob.ts'
import { FlatLayout } from '../kopia/blob-layout.ts'
import { KopiaRepository } from '../kopia/repository.ts'
import type { KopiaFormatData, OpenedRepository } from '../state/catalog-state.ts'
import { passwordDigest } from '../state/password-verdicts.ts'
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

/** The outer format blob as snapshot data (strings: immutable, and a snapshot can be frozen deeply). */
export function formatDataOf(blob: FormatBlob): KopiaFormatData {
  return Object.freeze({
    uniqueId: blob.uniqueId.toString('hex'),
    keyAlgorithm: blob.keyAlgorithm,
    encryption: blob.encryption,
    encryptedBlockFormat: blob.encryptedBlockFormat.toString('base64'),
  })
}

/** Back to the reader's FormatBlob, to check a password against it (password-check.ts). */
export function formatBlobOf(data: KopiaFormatData): FormatBlob {
  return {
    uniqueId: Buffer.from(data.uniqueId, 'hex'),
    keyAlgorithm: data.keyAlgorithm,
    encryption: data.encryption,
    encryptedBlockFormat: Buffer.from(data.encryptedBlockFormat, 'base64'),
    buildVersion: '',
  }
}

/** The verdict id of a format blob: hex sha256 over what a verdict depends on (see OpenedRepository.id). */
export function repositoryIdOf(data: KopiaFormatData): string {
  const hash = createHash('sha256')
  for (const part of [data.uniqueId, data.keyAlgorithm, data.encryption, data.encryptedBlockFormat]) hash.update(`${part.length}:${part};`)
  return hash.digest('hex')
}

/** Opens with the password; on S3 the layout is always flat, so nothing is probed for it. */
export async function openKopia(store: BlobStore, password: string, where: KopiaWhere, signal: AbortSignal): Promise<OpenedKopia> {
  const repository = await KopiaRepository.open(store, password, { signal, ...(where.s3 ? { layout: new FlatLayout(store) } : {}) })
  const format = formatDataOf(repository.formatBlob)
  const reference: OpenedRepository = Object.freeze({
    kind: 'kopia' as const,
    ...where,
    location: repository.location,
    id: repositoryIdOf(format),
    format,
    openedWithDigest: passwordDigest(password),
  })
  return { password, repository, reference }
}
