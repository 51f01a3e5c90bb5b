import t from 'tap'
import { formatBytes, parseDuration, parseSize } from '../../src/config/units.js'

t.test('parseSize accepts units and refuses junk', async (t) => {
  t.equal(parseSize('512MB'), 512e6)
  t.equal(parseSize('20GiB'), 20 * 1024 ** 3)
  t.equal(parseSize('1.5kb'), 1500)
  t.equal(parseSize('1048576'), 1048576)
  t.equal(parseSize('12 parsecs'), undefined)
  t.equal(parseSize('-1MB'), undefined)
})

t.test('parseDuration', async (t) => {
  t.equal(parseDuration('4s'), 4000)
  t.equal(parseDuration('250ms'), 250)
  t.equal(parseDuration('2m'), 120_000)
  t.equal(parseDuration('soon'), undefined)
})

t.test('formatBytes', async (t) => {
  t.equal(formatBytes(999), '999 B')
  t.equal(formatBytes(1_500_000), '1.50 MB')
})
