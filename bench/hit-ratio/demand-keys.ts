/**
 * `node --expose-gc dist/bench/hit-ratio/demand-keys.js [--keys N]` (after `npm run build`):
 * the heap the demand model's kept keys take (edge/cache/demand.ts `maxKeys`), per key: N
 * distinct segment keys (2^19 by default; fresh strings, as a request's key is) over 2,000
 * streams already known, recorded once each, heap used measured after a full collection, with
 * the keys' strings shared with the caller and held by the model alone.
 */
import { DemandModel } from '../../edge/cache/demand.js'
import { ManualClock } from '../../src/clock.js'
import { benchArgs, numberArg } from '../lib/args.js'

const USAGE = `Usage: node --expose-gc dist/bench/hit-ratio/demand-keys.js [flags]
  --keys N      distinct segment keys recorded (default: ${2 ** 19})
  -h, --help    print this and exit`
const args = benchArgs(USAGE, { options: { keys: { type: 'string', default: String(2 ** 19) } } })
const n = numberArg(args.keys, '--keys', 2 ** 19, { integer: true, min: 1 })
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with node --expose-gc')
const m = new DemandModel({ clock: new ManualClock(), maxKeys: 2 * n + 2 })
const STREAMS = 2000
for (let s = 0; s < STREAMS; s++) m.record(`/vod/title-${s}/v1/720p/seg-00001.m4s`)
const heap = () => {
  gc()
  return process.memoryUsage().heapUsed
}
const h0 = heap()
const keys: string[] = []
for (let i = 0; i < n; i++)
  keys.push(
    [
      '/vod/title-',
      i % STREAMS,
      '/v1/720p/seg-',
      String(2 + Math.floor(i / STREAMS)).padStart(5, '0'),
      '.m4s',
    ].join(''),
  )
const h1 = heap()
for (const k of keys) m.record(k)
const h2 = heap()
keys.length = 0
const h3 = heap()
const per = (b: number) => (b / n).toFixed(0)
process.stdout.write(
  `${m.keyCount} keys kept: ${per(h2 - h1)} bytes each beside the caller's strings, ${per(h3 - h0)} with their strings\n`,
)
