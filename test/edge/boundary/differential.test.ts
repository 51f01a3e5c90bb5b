/**
 * The raw hit path against node's parser: the same generated requests (valid, mutated,
 * pipelined, split) sent to an edge with the raw path on and to one with it off get the same
 * statuses, in the same number. Seeded (SEED), bounded in count (CASES) and time (BUDGET_MS):
 * a failure names its case and its bytes, and the same seed makes the same cases. Statuses are
 * compared up to the first answer that closes the connection (see untilClose).
 */
import t, { type Test } from 'tap'
import { startEdge } from '../../helpers/edge.js'
import { startUpstream } from '../upstream-server.js'
import { everySplit, Generator, type Case } from './requests.js'
import { exchange, type WireResponse } from './wire.js'

const SEED = 20_261_202
/** Random cases: at least MIN_CASES, then more up to CASES while within BUDGET_MS. */
const MIN_CASES = 1000
const CASES = 4000
const BUDGET_MS = 15_000
const PARALLEL = 8

const PL = '/vod/show/v1/index.m3u8'
const SEG = '/vod/show/v1/seg-00001.m4s'
const MISSING = '/vod/show/v1/missing.m3u8'
const PLAYLIST = Buffer.from(`#EXTM3U\n#EXT-X-VERSION:7\n${'#EXTINF:4.0,\nseg.m4s\n'.repeat(20)}`)
const SEGMENT = Buffer.alloc(16 * 1024, 7)

async function edges(t: Test) {
  const origin = await startUpstream(t, {
    [PL]: async (_req, reply) =>
      reply.header('cache-control', 'public, max-age=3600').header('etag', '"pl"').send(PLAYLIST),
    [SEG]: async (_req, reply) =>
      reply.header('cache-control', 'public, max-age=3600').header('etag', '"seg"').send(SEGMENT),
  })
  // The missing playlist's 404 is cached for the whole run (negative caching), as the playlist
  // and the segment are: no case waits on the upstream. A miss would race the client's
  // half-close (node's http drops an answer not yet written when the client's FIN arrives) and
  // make the two edges differ by timing, not by parser; the default 10 s TTL could run out
  // within the run on a busy machine.
  const on = await startEdge(t, { upstream: origin.url, rawHits: true, notFoundTtl: 3_600_000 })
  const off = await startEdge(t, { upstream: origin.url, rawHits: false, notFoundTtl: 3_600_000 })
  for (const edge of [on, off])
    for (const p of [PL, SEG, MISSING]) await (await fetch(edge.url + p)).arrayBuffer()
  await Promise.all([on.app.edge.flights.settled('show'), off.app.edge.flights.settled('show')])
  return { on, off, port: (e: typeof on) => Number(new URL(e.url).port) }
}

/**
 * The statuses a client may read: up to the first answer that says `Connection: close`. After
 * it the server processes no further request (RFC 9112 §9.6), and whether node still wrote one
 * it had already parsed depends on how the bytes were split into reads, not on the raw path.
 */
function untilClose(responses: WireResponse[]): number[] {
  const out: number[] = []
  for (const r of responses) {
    out.push(r.status)
    if (/(^|,)\s*close\s*(,|$)/i.test(r.headers.connection ?? '')) break
  }
  return out
}

const get = (target: string, method = 'GET') => `${method} ${target} HTTP/1.1\r\nHost: edge.test\r\n\r\n`

t.test('raw path on and off: same statuses, same number of answers', async (t) => {
  const { on, off, port } = await edges(t)
  const onPort = port(on)
  const offPort = port(off)
  const gen = new Generator(SEED, [PL, PL, SEG, MISSING, '/healthz'])
  const fixed: Case[] = [
    ...everySplit('GET hit', get(PL)),
    ...everySplit('HEAD hit', get(SEG, 'HEAD')),
    ...everySplit('pipelined hits', get(PL) + get(SEG)),
    ...everySplit('bare LF', get(PL).replaceAll('\r\n', '\n')),
  ]
  const started = performance.now()
  const mismatches: string[] = []
  let cases = 0
  let answered = 0
  const statuses = new Map<number, number>()
  const next = (): Case | undefined => {
    const random = cases - fixed.length
    if (random >= MIN_CASES && (random >= CASES || performance.now() - started > BUDGET_MS)) return undefined
    const c = cases < fixed.length ? fixed[cases]! : gen.next()
    cases++
    return c
  }
  const worker = async () => {
    for (let c = next(); c !== undefined && mismatches.length < 5; c = next()) {
      const [a, b] = await Promise.all([exchange(onPort, c.parts), exchange(offPort, c.parts)])
      const sa = untilClose(a.responses)
      const sb = untilClose(b.responses)
      for (const s of sa) statuses.set(s, (statuses.get(s) ?? 0) + 1)
      answered += sa.length
      if (sa.join() !== sb.join())
        mismatches.push(
          `${c.label}\n  bytes ${JSON.stringify(Buffer.concat(c.parts).toString('latin1').slice(0, 300))}\n` +
            `  raw on: [${a.responses.map((r) => r.status)}], raw off: [${b.responses.map((r) => r.status)}]`,
        )
    }
  }
  await Promise.all(Array.from({ length: PARALLEL }, worker))
  const ms = Math.round(performance.now() - started)
  const seen = [...statuses].sort(([x], [y]) => x - y).map(([s, n]) => `${s}:${n}`)
  t.comment(`${cases} cases (${fixed.length} splits at every offset), ${answered} answers, ${ms} ms`)
  t.comment(`statuses (raw on): ${seen.join(' ')}`)
  t.same(mismatches, [], 'every case got the same answers from both edges')
  t.ok(on.app.edge.raw!.answered > 0, 'the raw path answered some of them itself')
  t.ok((statuses.get(400) ?? 0) > 0 && (statuses.get(200) ?? 0) > 0, 'both hits and refusals among them')
})
