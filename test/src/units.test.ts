import t from 'tap'
import { formatBytes, formatDuration, formatSize, parseDuration, parseSize } from '../../src/config/units.js'

t.test('parseSize: a unit is required (only 0 goes without)', async (t) => {
  t.equal(parseSize('512MB'), 512e6)
  t.equal(parseSize('20GiB'), 20 * 1024 ** 3)
  t.equal(parseSize('1.5kb'), 1500)
  t.equal(parseSize('1048576B'), 1048576)
  t.equal(parseSize('0'), 0)
  t.equal(parseSize('1048576'), undefined, 'a bare number says no unit')
  t.equal(parseSize('12 parsecs'), undefined)
  t.equal(parseSize('-1MB'), undefined)
})

t.test('parseDuration: a unit is required (only 0 goes without)', async (t) => {
  t.equal(parseDuration('4s'), 4000)
  t.equal(parseDuration('250ms'), 250)
  t.equal(parseDuration('2m'), 120_000)
  t.equal(parseDuration('1.5h'), 5_400_000)
  t.equal(parseDuration('0'), 0)
  t.equal(parseDuration('15000'), undefined, 'a bare number: milliseconds or seconds? refused')
  t.equal(parseDuration('soon'), undefined)
})

t.test('format and parse agree: what --help prints reads back as the same value', async (t) => {
  for (const ms of [0, 1, 250, 1000, 1500, 15_000, 90_000, 120_000, 3_600_000, 86_400_000])
    t.equal(parseDuration(formatDuration(ms)), ms, formatDuration(ms))
  t.equal(formatDuration(15_000), '15s')
  t.equal(formatDuration(86_400_000), '24h')
  t.equal(formatDuration(1500), '1500ms')
  for (const b of [0, 1, 1000, 1024, 64 * 1024, 512e6, 20e9, 20 * 1024 ** 3, 1_000_001])
    t.equal(parseSize(formatSize(b)), b, formatSize(b))
  t.equal(formatSize(512e6), '512MB')
  t.equal(formatSize(64 * 1024), '64KiB')
  t.equal(formatSize(1_000_001), '1000001B')
})

t.test('formatBytes', async (t) => {
  t.equal(formatBytes(999), '999 B')
  t.equal(formatBytes(1_500_000), '1.50 MB')
})
