/**
 * HTTP-dates (RFC 9110 §5.6.7), parsed strictly: the one parser for every date field a node
 * reads (Expires, Date and Last-Modified in edge/cache/freshness.ts; If-Modified-Since,
 * If-Unmodified-Since and Last-Modified in conditional.ts). Anything that is not exactly one of
 * the three forms (another zone, a missing comma, dashes, a one-digit hour, a bare year, two
 * values) is not a date: `Date.parse` would read `2025` or `garbage 2030` as one.
 */

const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)'
const LONG_DAY = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)'
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const MONTH = `(${MONTHS.join('|')})`
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})'
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`)
const RFC850_DATE = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`)
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`)

function utc(year: number, month: string, day: number, h: number, m: number, s: number): number | undefined {
  const mon = MONTHS.indexOf(month)
  if (h > 23 || m > 59 || s > 60 || day < 1) return undefined
  const t = Date.UTC(year, mon, day, h, m, Math.min(s, 59))
  // Reject days past the month's end (31 Feb) rather than rolling over.
  return new Date(t).getUTCDate() === day ? t : undefined
}

/**
 * An HTTP-date in ms, or undefined when the value is not exactly one of its three forms:
 * IMF-fixdate, or the obsolete RFC 850 and asctime forms recipients must accept. A two-digit
 * RFC 850 year more than 50 years ahead is taken as the previous century.
 */
export function parseHttpDate(v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  let m = IMF_FIXDATE.exec(v)
  if (m) return utc(Number(m[3]), m[2]!, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]))
  m = RFC850_DATE.exec(v)
  if (m) {
    const now = new Date().getUTCFullYear()
    let year = Math.floor(now / 100) * 100 + Number(m[3])
    if (year > now + 50) year -= 100
    return utc(year, m[2]!, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]))
  }
  m = ASCTIME_DATE.exec(v)
  if (m) return utc(Number(m[6]), m[1]!, Number(m[2]!.trim()), Number(m[3]), Number(m[4]), Number(m[5]))
  return undefined
}
