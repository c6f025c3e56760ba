// How long a ReplicationSource's `spec.trigger.schedule` may leave between two backups: the longest gap
// between consecutive fire times. "Backup overdue" (backup-health.ts) is no success within twice that.
//
// Why the longest gap, not "the next two fire times" or nextSyncTime - lastSyncTime: a schedule such as
// "0 1,2 * * *" fires an hour apart and then waits 23 h, and "0 0 31 * *" skips the short months; the
// next two fires would call a healthy RS overdue at night. nextSyncTime - lastSyncTime grows with the
// very outage it should detect (the last success is old), so it would never call anything overdue.
//
// The schedule is read as VolSync reads it (robfig/cron v3's standard parser, the CRD's regex):
// five fields (minute hour day-of-month month day-of-week) of numbers, lists, ranges, `*` and steps,
// or @hourly/@daily/@midnight/@weekly/@monthly/@yearly/@annually. Day of month and day of week combine
// as cron does: when both are restricted (neither is `*`), a day matches either. Times are UTC, as the
// controller's are. Pure; memoized per schedule string (the answer depends on nothing else).

const DESCRIPTORS: Readonly<Record<string, string>> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
}

interface Field {
  readonly values: ReadonlySet<number>
  /** `*` (or `?`, `*\/1`): unrestricted, which matters for the day-of-month/day-of-week rule. */
  readonly star: boolean
}

/** One cron field over [min, max], or null when it is not one. */
function parseField(text: string, min: number, max: number): Field | null {
  const values = new Set<number>()
  let star = false
  for (const part of text.split(',')) {
    const match = /^(\*|\?|\d+)(?:-(\d+))?(?:\/(\d+))?$/.exec(part)
    if (!match) return null
    const [, startText = '', endText, stepText] = match
    const step = stepText === undefined ? 1 : Number(stepText)
    let start: number
    let end: number
    if (startText === '*' || startText === '?') {
      if (endText !== undefined) return null
      start = min
      end = max
      if (step === 1) star = true
    } else {
      start = Number(startText)
      // "N/step" means N-max/step (robfig/cron).
      end = endText !== undefined ? Number(endText) : stepText !== undefined ? max : start
    }
    if (step < 1 || start < min || end > max || start > end) return null
    for (let v = start; v <= end; v += step) values.add(v)
  }
  return { values, star }
}

interface Schedule {
  readonly minutes: readonly number[]
  readonly hours: readonly number[]
  readonly daysOfMonth: Field
  readonly months: Field
  readonly daysOfWeek: Field
}

function parseSchedule(schedule: string): Schedule | null {
  const text = DESCRIPTORS[schedule.trim().toLowerCase()] ?? schedule.trim()
  const fields = text.split(/\s+/)
  if (fields.length !== 5) return null
  const minute = parseField(fields[0]!, 0, 59)
  const hour = parseField(fields[1]!, 0, 23)
  const dom = parseField(fields[2]!, 1, 31)
  const month = parseField(fields[3]!, 1, 12)
  // 7 is Sunday too in most crons; robfig rejects it, but reading it as 0 is harmless.
  const dowRaw = parseField(fields[4]!, 0, 7)
  if (!minute || !hour || !dom || !month || !dowRaw) return null
  const dow: Field = { star: dowRaw.star, values: new Set([...dowRaw.values].map((d) => d % 7)) }
  const sorted = (f: Field): number[] => [...f.values].sort((a, b) => a - b)
  return { minutes: sorted(minute), hours: sorted(hour), daysOfMonth: dom, months: month, daysOfWeek: dow }
}

function dayMatches(s: Schedule, day: Date): boolean {
  if (!s.months.values.has(day.getUTCMonth() + 1)) return false
  const dom = s.daysOfMonth.values.has(day.getUTCDate())
  const dow = s.daysOfWeek.values.has(day.getUTCDay())
  return s.daysOfMonth.star || s.daysOfWeek.star ? dom && dow : dom || dow
}

const MINUTE_MS = 60_000
const DAY_MS = 86_400_000
/** Scanned from a fixed day, so the answer is a function of the schedule alone: 8 years hold every leap-day pattern twice. */
const SCAN_FROM = Date.UTC(2024, 0, 1)
const SCAN_DAYS = 8 * 366

/**
 * The longest gap between two consecutive fire times of a cron schedule, in ms; null when the string is
 * not a schedule VolSync accepts or fires fewer than twice in eight years. Cached per string, so cheap
 * enough to call per ReplicationSource at every scrape.
 */
export function cronPeriodMs(schedule: string): number | null {
  const cached = cache.get(schedule)
  if (cached !== undefined) return cached
  const period = computePeriod(schedule)
  if (cache.size >= CACHE_LIMIT) cache.clear()
  cache.set(schedule, period)
  return period
}

const cache = new Map<string, number | null>()
/** Distinct schedules are about one per RS (H expansion); a bound keeps a pathological churn from growing it. */
const CACHE_LIMIT = 10_000

function computePeriod(schedule: string): number | null {
  const s = parseSchedule(schedule)
  if (!s) return null
  // Minute and hour do not depend on the day: one day's fire times, as minutes after midnight.
  const times = s.hours.flatMap((h) => s.minutes.map((m) => h * 60 + m))
  if (times.length === 0) return null
  let longest = 0
  for (let i = 1; i < times.length; i++) longest = Math.max(longest, times[i]! - times[i - 1]!)
  let previousDay: number | null = null
  let fires = 0
  for (let d = 0; d < SCAN_DAYS; d++) {
    if (!dayMatches(s, new Date(SCAN_FROM + d * DAY_MS))) continue
    fires += times.length
    if (previousDay !== null) longest = Math.max(longest, (d - previousDay) * 1440 + times[0]! - times[times.length - 1]!)
    previousDay = d
  }
  return fires < 2 ? null : longest * MINUTE_MS
}
