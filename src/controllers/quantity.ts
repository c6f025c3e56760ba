// Kubernetes resource quantities ("5Gi", "500M", "1.5Ti", "1073741824"), as far as a volume
// capacity needs them: to bytes, and bytes back to a whole number of Gi.

const SUFFIX: Record<string, number> = {
  '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
}

/** Bytes, or null when the text is not a quantity this understands. */
export function quantityBytes(text: string): number | null {
  const match = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/.exec(text.trim())
  if (!match) return null
  return Math.ceil(Number(match[1]) * SUFFIX[match[2] ?? '']!)
}

/** The smallest whole number of Gi holding `bytes` (at least 1Gi). */
export function gibibytes(bytes: number): string {
  return `${Math.max(1, Math.ceil(bytes / 2 ** 30))}Gi`
}
