// Go's RFC 3339 nanosecond timestamps. Go trims trailing zeros of the fraction ("…:59.7Z"), so the
// strings do not sort lexicographically and Date would drop the sub-millisecond part: times are
// kept as (whole seconds since the epoch, nanoseconds) and printed back with all nine digits.

export interface Instant {
  /** Whole seconds since 1970-01-01T00:00:00Z (negative before). Exact in a double for any year 0-9999. */
  readonly seconds: number
  /** 0-999,999,999 */
  readonly nanos: number
}

/** Value of `count` decimal digits at `from`, or -1. */
function digits(text: string, from: number, count: number): number {
  let value = 0
  for (let i = from; i < from + count; i++) {
    const d = text.charCodeAt(i) - 48
    if (d < 0 || d > 9) return -1
    value = value * 10 + d
  }
  return value
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yearOfEra = y - era * 400
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1
  return era * 146097 + yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear - 719468
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/**
 * An RFC 3339 timestamp (`T` or `t`, `Z`/`z` or `±hh:mm`, up to nine fraction digits) as seconds and
 * nanoseconds since the epoch; null when it is not one, including impossible dates. Hand-rolled rather
 * than a regex and a Date: a poll parses three times per manifest.
 */
export function parseRfc3339(text: string): Instant | null {
  if (text.length < 20 || text[4] !== '-' || text[7] !== '-' || (text[10] !== 'T' && text[10] !== 't') || text[13] !== ':' || text[16] !== ':') return null
  const year = digits(text, 0, 4)
  const month = digits(text, 5, 2)
  const day = digits(text, 8, 2)
  const hour = digits(text, 11, 2)
  const minute = digits(text, 14, 2)
  const second = digits(text, 17, 2)
  if (year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return null
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  if (day > (month === 2 && leap ? 29 : (MONTH_DAYS[month - 1] ?? 0))) return null
  let at = 19
  let nanos = 0
  if (text[at] === '.') {
    const from = ++at
    while (at < text.length && at - from < 10 && text.charCodeAt(at) >= 48 && text.charCodeAt(at) <= 57) at++
    const count = at - from
    if (count === 0 || count > 9) return null
    nanos = digits(text, from, count) * 10 ** (9 - count)
  }
  let offset = 0
  const zone = text[at]
  if ((zone === 'Z' || zone === 'z') && at + 1 === text.length) offset = 0
  else if ((zone === '+' || zone === '-') && at + 6 === text.length && text[at + 3] === ':') {
    const oh = digits(text, at + 1, 2)
    const om = digits(text, at + 4, 2)
    if (oh < 0 || om < 0 || oh > 23 || om > 59) return null
    offset = (zone === '+' ? 1 : -1) * (oh * 3600 + om * 60)
  } else return null
  return { seconds: daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset, nanos }
}

/** -1, 0 or 1 as `a` is before, equal to or after `b`: a comparator for sort. */
export function compareInstants(a: Instant, b: Instant): number {
  if (a.seconds !== b.seconds) return a.seconds < b.seconds ? -1 : 1
  return a.nanos === b.nanos ? 0 : a.nanos < b.nanos ? -1 : 1
}

/** UTC, always nine fraction digits, so that the strings of years 0-9999 sort like the instants. */
export function formatRfc3339Nano(instant: Instant): string {
  const date = new Date(instant.seconds * 1000)
  const year = String(date.getUTCFullYear()).padStart(4, '0')
  const two = (n: number) => String(n).padStart(2, '0')
  return `${year}-${two(date.getUTCMonth() + 1)}-${two(date.getUTCDate())}T${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}.${String(instant.nanos).padStart(9, '0')}Z`
}
