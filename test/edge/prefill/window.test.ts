import t from 'tap'
import { localMinuteOfDay, parseWindow, rateNow, windowState } from '../../../edge/prefill/window.js'

const utc = (h: number, m = 0) => Date.UTC(2026, 2, 10, h, m)

t.test('parseWindow refuses what is not HH:MM-HH:MM, naming the field', async (t) => {
  for (const bad of ['2-6', '02:00', '25:00-06:00', '02:00-02:00', '02:60-03:00', '02:00-24:30', ''])
    t.throws(() => parseWindow(bad), { code: 'CDN_ERR_BAD_BODY', details: { field: 'window' } }, bad)
  t.throws(() => parseWindow('02:00-06:00', 'Mars/Olympus'), { code: 'CDN_ERR_BAD_BODY' })
  t.match(parseWindow('22:30-24:00'), { startMin: 1350, endMin: 0 })
})

t.test('a window in a named zone', async (t) => {
  const w = parseWindow('02:00-06:00', 'UTC')
  t.match(windowState(w, utc(1, 30)), { open: false, msUntilOpen: 30 * 60_000, msUntilClose: 0 })
  t.match(windowState(w, utc(2, 0)), { open: true, msUntilOpen: 0, msUntilClose: 4 * 3_600_000 })
  t.match(windowState(w, utc(5, 59)), { open: true, msUntilClose: 60_000 })
  t.match(windowState(w, utc(6, 0)), { open: false, msUntilOpen: 20 * 3_600_000 })
  t.equal(windowState(w, utc(3)).lengthMs, 4 * 3_600_000)
  // Tokyo is UTC+9 all year: 02:00 there is 17:00 UTC.
  const tokyo = parseWindow('02:00-06:00', 'Asia/Tokyo')
  t.ok(windowState(tokyo, utc(17, 30)).open)
  t.notOk(windowState(tokyo, utc(2, 30)).open)
})

t.test('a window across midnight', async (t) => {
  const w = parseWindow('22:00-04:00', 'UTC')
  t.ok(windowState(w, utc(23)).open)
  t.ok(windowState(w, utc(1)).open)
  t.notOk(windowState(w, utc(4)).open)
  t.equal(windowState(w, utc(21)).msUntilOpen, 3_600_000)
  t.equal(windowState(w, utc(23)).msUntilClose, 5 * 3_600_000)
  t.equal(windowState(w, utc(12)).lengthMs, 6 * 3_600_000)
})

t.test("without a zone the window is in the edge's local time", async (t) => {
  const w = parseWindow('02:00-06:00')
  const localThree = new Date(2026, 2, 10, 3, 0).getTime()
  const localSeven = new Date(2026, 2, 10, 7, 0).getTime()
  t.ok(windowState(w, localThree).open)
  t.notOk(windowState(w, localSeven).open)
  t.equal(localMinuteOfDay(localThree, undefined), 180)
})

t.test('rateNow: the cap inside, the trickle or a wait outside', async (t) => {
  const w = parseWindow('02:00-06:00', 'UTC')
  t.equal(rateNow(undefined, utc(12), 5000, 100), 5000, 'no window: always the cap')
  t.equal(rateNow(w, utc(3), 5000, 100), 5000)
  t.equal(rateNow(w, utc(12), 5000, 100), 100, 'trickle outside')
  t.equal(rateNow(w, utc(12), 50, 100), 50, 'a trickle never exceeds the cap')
  t.equal(rateNow(w, utc(12), 5000, undefined), 0, 'no trickle: wait')
  t.equal(rateNow(w, utc(12), undefined, 300), 300)
  t.equal(rateNow(w, utc(3), undefined, 300), undefined, 'uncapped inside')
})
