// Small numeric helpers: exact percentiles over recorded samples, medians, and number formatting.

export interface Quantiles {
  readonly p50: number
  readonly p99: number
  readonly p999: number
  readonly max: number
  readonly count: number
}

/** Nearest-rank percentile (p in 0..100) of an ascending array. */
function rank(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

/** Sorts the samples in place and reads p50, p99, p99.9 and max. */
export function quantiles(samples: Float64Array): Quantiles {
  samples.sort()
  const n = samples.length
  return { p50: rank(samples, 50), p99: rank(samples, 99), p999: rank(samples, 99.9), max: n > 0 ? samples[n - 1]! : Number.NaN, count: n }
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** A growable Float64Array for latency samples (no boxing of numbers in a JS array). */
export class SampleBuffer {
  #data = new Float64Array(1 << 16)
  #length = 0

  push(value: number): void {
    if (this.#length === this.#data.length) {
      const bigger = new Float64Array(this.#data.length * 2)
      bigger.set(this.#data)
      this.#data = bigger
    }
    this.#data[this.#length++] = value
  }

  get length(): number {
    return this.#length
  }

  /** The recorded samples (a copy trimmed to length, safe to sort). */
  values(): Float64Array {
    return this.#data.slice(0, this.#length)
  }
}

/** 3 significant digits, no exponent for the ranges printed here. */
export function fmt(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return String(value)
  if (value === 0) return '0'
  const magnitude = Math.floor(Math.log10(Math.abs(value)))
  const decimals = Math.max(0, digits - 1 - magnitude)
  return value.toFixed(Math.min(decimals, 6))
}

export function fmtInt(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toString() : String(value)
}

export function pad(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length)
}

export function padLeft(text: string, width: number): string {
  return text.length >= width ? text : ' '.repeat(width - text.length) + text
}

/** A `--name` option's value as a positive number (`fallback` when absent); throws naming the option otherwise. */
export function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: a positive number, not ${JSON.stringify(value)}`)
  return n
}
