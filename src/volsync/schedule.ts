// Backup schedules: Jenkins-style `H` expanded into a literal cron a ReplicationSource accepts, and the
// check a literal cron must pass before it is written to `spec.trigger.schedule`.
//
// `H` in a field is one value of that field's range chosen by a hash of a stable key (the PVC's
// `namespace/name`), so 1,000 hourly PVCs start spread over the hour instead of all at minute 0, and a
// PVC's schedule is the same on every reconcile and every replica (no clock, no randomness, no state).
// Forms (Jenkins' notation): `H` (the whole range), `H(a-b)` (a..b), `H/n` and `H(a-b)/n` (every n from
// a hashed offset below n, written out as a list because VolSync's CRD pattern has no `a-b/n`).
// Day of month uses 1-28 for `H`, as Jenkins does, so the day exists in every month.
//
// What VolSync's CRD accepts (api/v1alpha1 common_types.go, `trigger.schedule` pattern): one of the
// macros `@hourly` ... `@annually`, or five space-separated fields, each `N[,N...]`, `A-B`, `A/N`, `*` or
// `*/N`. validateCron checks that grammar and the ranges, so a schedule this server writes is never one
// the API server refuses. Pure: no I/O.
import { createHash } from 'node:crypto'

/** One field of a five-field cron: its name (for messages) and range; `hashMax` bounds `H` where it differs. */
interface CronField {
  readonly name: string
  readonly min: number
  readonly max: number
  readonly hashMax?: number
}

/** minute, hour, day of month, month, day of week (0 = Sunday), as VolSync's cron parser reads them. */
export const CRON_FIELDS: readonly CronField[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31, hashMax: 28 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day of week', min: 0, max: 6 },
]

/** The macros VolSync's CRD pattern accepts in place of five fields. */
export const CRON_MACROS = ['@annually', '@yearly', '@monthly', '@weekly', '@daily', '@hourly'] as const

/** A cron ready for `spec.trigger.schedule`, or why the input is not one. */
export type CronResult = { readonly cron: string } | { readonly error: string }

/**
 * A number in [0, 2^32) from sha256(key, field index, item index): the same inputs give the same number
 * on every machine; different fields of one key are independent, so `H H * * *` is not "minute = hour".
 */
function hashOf(key: string, field: number, item: number): number {
  return createHash('sha256').update(`${key}\u0000${field}\u0000${item}`).digest().readUInt32BE(0)
}

const H_ITEM = /^H(?:\((\d+)-(\d+)\))?(?:\/(\d+))?$/

/** One `H` item of `field` (index `index`) expanded for `key`, or an error naming the field. */
function expandH(item: string, field: CronField, index: number, itemIndex: number, key: string): CronResult {
  const match = H_ITEM.exec(item)
  if (!match) return { error: `${field.name} field "${item}": H must be written H, H(a-b), H/n or H(a-b)/n` }
  const lo = match[1] !== undefined ? Number(match[1]) : field.min
  const hi = match[2] !== undefined ? Number(match[2]) : (field.hashMax ?? field.max)
  if (lo < field.min || hi > field.max || lo > hi) return { error: `${field.name} field "${item}": the range must lie within ${field.min}-${field.max}, low to high` }
  const hash = hashOf(key, index, itemIndex)
  if (match[3] === undefined) return { cron: String(lo + (hash % (hi - lo + 1))) }
  const step = Number(match[3])
  if (step < 1) return { error: `${field.name} field "${item}": the step must be at least 1` }
  const values: number[] = []
  for (let value = lo + (hash % Math.min(step, hi - lo + 1)); value <= hi; value += step) values.push(value)
  return { cron: values.join(',') }
}

/**
 * `template` (five fields, or a macro) with every `H` item expanded for `key` (the PVC's
 * `namespace/name`), then checked by validateCron. The same template and key always give the same cron.
 * A field holding only literal items is kept as written. Errors name the field.
 */
export function expandSchedule(template: string, key: string): CronResult {
  const fields = template.trim().split(/\s+/)
  if (fields.length !== CRON_FIELDS.length) return validateCron(template)
  const out: string[] = []
  for (const [index, text] of fields.entries()) {
    const field = CRON_FIELDS[index]!
    const items = text.split(',')
    if (!items.some((item) => item.startsWith('H'))) {
      out.push(text)
      continue
    }
    const expanded: string[] = []
    for (const [itemIndex, item] of items.entries()) {
      if (!item.startsWith('H')) return { error: `${field.name} field "${text}": H cannot be mixed with other items in one field` }
      const result = expandH(item, field, index, itemIndex, key)
      if ('error' in result) return result
      expanded.push(result.cron)
    }
    // Several H items may land on the same value: keep each once, in order, as cron lists are.
    out.push([...new Set(expanded.join(',').split(',').map(Number))].sort((a, b) => a - b).join(','))
  }
  return validateCron(out.join(' '))
}

/** Whether `text` is a whole number within the field's range. */
function inRange(text: string, field: CronField): boolean {
  const value = Number(text)
  return /^\d+$/.test(text) && value >= field.min && value <= field.max
}

/** Why one field is not in the grammar VolSync's CRD accepts (see the file comment), or null when it is. */
function fieldError(text: string, field: CronField): string | null {
  const bad = (why: string) => `${field.name} field "${text}": ${why}`
  if (/^\*(?:\/\d+)?$/.test(text)) return text === '*' || Number(text.slice(2)) >= 1 ? null : bad('the step must be at least 1')
  if (/^\d+(?:,\d+)*$/.test(text)) return text.split(',').every((n) => inRange(n, field)) ? null : bad(`every value must lie within ${field.min}-${field.max}`)
  const range = /^(\d+)-(\d+)$/.exec(text)
  if (range) return inRange(range[1]!, field) && inRange(range[2]!, field) && Number(range[1]) <= Number(range[2]) ? null : bad(`the range must lie within ${field.min}-${field.max}, low to high`)
  const step = /^(\d+)\/(\d+)$/.exec(text)
  if (step) return inRange(step[1]!, field) && Number(step[2]) >= 1 ? null : bad(`the start must lie within ${field.min}-${field.max} and the step be at least 1`)
  return bad('expected N, N,N,..., A-B, A/N, * or */N')
}

/**
 * `text` as VolSync's `trigger.schedule` takes it: a macro (`@hourly`, `@daily`, ...), or five
 * fields separated by single spaces, each in the CRD's grammar and within its range (minute 0-59,
 * hour 0-23, day of month 1-31, month 1-12, day of week 0-6). Surrounding and repeated whitespace is
 * normalised. An error says which field is wrong and why.
 */
export function validateCron(text: string): CronResult {
  const trimmed = text.trim()
  if ((CRON_MACROS as readonly string[]).includes(trimmed)) return { cron: trimmed }
  const fields = trimmed === '' ? [] : trimmed.split(/\s+/)
  if (fields.length !== CRON_FIELDS.length) return { error: `"${text}" has ${fields.length} field(s); a cron has 5 (minute hour day-of-month month day-of-week) or is one of ${CRON_MACROS.join(', ')}` }
  for (const [index, field] of CRON_FIELDS.entries()) {
    const error = fieldError(fields[index]!, field)
    if (error !== null) return { error }
  }
  return { cron: fields.join(' ') }
}
