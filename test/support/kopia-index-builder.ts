// Test-only: builds index blobs (v1 and v2 binary layouts) from entries, written from the
// read-path document independently of src/kopia.

export interface BuiltEntry {
  readonly contentId: string
  readonly timestamp: number
  readonly deleted: boolean
  readonly packBlobId: string
  readonly packOffset: number
  readonly packedLength: number
  readonly originalLength: number
  readonly compressionHeaderId: number
  readonly formatVersion: number
}

/** Prefix letter's code (or 0) then the hash bytes. */
export function indexKey(contentId: string): Buffer {
  const prefixed = contentId.length % 2 === 1
  const prefix = prefixed ? contentId.charCodeAt(0) : 0
  return Buffer.concat([Buffer.from([prefix]), Buffer.from(prefixed ? contentId.slice(1) : contentId, 'hex')])
}

function sorted(entries: readonly BuiltEntry[]): { key: Buffer; entry: BuiltEntry }[] {
  return entries.map((entry) => ({ key: indexKey(entry.contentId), entry })).sort((a, b) => Buffer.compare(a.key, b.key))
}

export function buildIndexV2(entries: readonly BuiltEntry[], options: { entrySize?: 16 | 17 | 18 | 19 } = {}): Buffer {
  const rows = sorted(entries)
  const keySize = rows[0]?.key.length ?? 17
  const packs: string[] = []
  const formats: string[] = []
  for (const { entry } of rows) {
    if (!packs.includes(entry.packBlobId)) packs.push(entry.packBlobId)
    const f = `${entry.compressionHeaderId}/${entry.formatVersion}`
    if (!formats.includes(f)) formats.push(f)
  }
  const needsWide = formats.length > 1 || packs.length > 0xffff || rows.some(({ entry }) => entry.packedLength > 0xffffff || entry.originalLength > 0xffffff)
  const entrySize = options.entrySize ?? (needsWide ? 19 : 16)
  const stride = keySize + entrySize
  const packsOffset = 17 + rows.length * stride
  const formatsOffset = packsOffset + packs.length * 5
  const namesOffset = formatsOffset + formats.length * 6
  const names = Buffer.from(packs.join(''), 'latin1')
  const out = Buffer.alloc(namesOffset + names.length)
  out[0] = 2
  out[1] = keySize
  out.writeUInt16BE(entrySize, 2)
  out.writeUInt32BE(rows.length, 4)
  out.writeUInt32BE(packs.length, 8)
  out[12] = formats.length
  out.writeUInt32BE(0, 13)
  rows.forEach(({ key, entry }, i) => {
    const at = 17 + i * stride
    key.copy(out, at)
    const e = at + keySize
    out.writeUInt32BE(entry.timestamp, e)
    out.writeUInt32BE((entry.packOffset | (entry.deleted ? 0x80000000 : 0)) >>> 0, e + 4)
    out.writeUIntBE(entry.originalLength & 0xffffff, e + 8, 3)
    out.writeUIntBE(entry.packedLength & 0xffffff, e + 11, 3)
    const packIndex = packs.indexOf(entry.packBlobId)
    out.writeUInt16BE(packIndex & 0xffff, e + 14)
    if (entrySize > 16) out[e + 16] = formats.indexOf(`${entry.compressionHeaderId}/${entry.formatVersion}`)
    if (entrySize > 17) out[e + 17] = (packIndex >> 16) & 0xff
    if (entrySize > 18) out[e + 18] = ((Math.floor(entry.originalLength / 0x1000000) & 0xf) << 4) | (Math.floor(entry.packedLength / 0x1000000) & 0xf)
  })
  let nameAt = namesOffset
  packs.forEach((pack, i) => {
    out[packsOffset + i * 5] = pack.length
    out.writeUInt32BE(nameAt, packsOffset + i * 5 + 1)
    nameAt += pack.length
  })
  formats.forEach((f, i) => {
    const [compression, version] = f.split('/').map(Number)
    out.writeUInt32BE(compression ?? 0, formatsOffset + i * 6)
    out[formatsOffset + i * 6 + 4] = version ?? 0
    out[formatsOffset + i * 6 + 5] = 0
  })
  names.copy(out, namesOffset)
  return out
}

export function buildIndexV1(entries: readonly BuiltEntry[]): Buffer {
  const rows = sorted(entries)
  if (rows.length === 0) return Buffer.from([1, 255, 0, 20, 0, 0, 0, 0])
  const keySize = rows[0]?.key.length ?? 17
  const stride = keySize + 20
  const extraOffset = 8 + rows.length * stride
  const nameOffsets = new Map<string, number>()
  let names = ''
  for (const { entry } of rows) {
    if (entry.compressionHeaderId !== 0) throw new Error('index v1 cannot record compression')
    if (!nameOffsets.has(entry.packBlobId)) {
      nameOffsets.set(entry.packBlobId, extraOffset + names.length)
      names += entry.packBlobId
    }
  }
  const out = Buffer.alloc(extraOffset + names.length)
  out[0] = 1
  out[1] = keySize
  out.writeUInt16BE(20, 2)
  out.writeUInt32BE(rows.length, 4)
  rows.forEach(({ key, entry }, i) => {
    const at = 8 + i * stride
    key.copy(out, at)
    const v = at + keySize
    out.writeUIntBE(entry.timestamp, v, 6)
    out[v + 6] = entry.formatVersion
    out[v + 7] = entry.packBlobId.length
    out.writeUInt32BE(nameOffsets.get(entry.packBlobId) ?? 0, v + 8)
    out.writeUInt32BE((entry.packOffset | (entry.deleted ? 0x80000000 : 0)) >>> 0, v + 12)
    out.writeUInt32BE(entry.packedLength, v + 16)
  })
  out.write(names, extraOffset, 'latin1')
  return out
}
