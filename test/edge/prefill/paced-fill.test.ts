/**
 * A capped prefill's body is read at the job's pace (single-flight.ts `fill` with `pace`,
 * job-pacing.ts): each chunk is told to the pace, which holds the next one; a viewer who joins
 * the fetch is never paced (the held body resumes at once), and a purge of the title does not
 * wait for the pace (it resumes the body and waits for it at the upstream's). A real edge in front of a real
 * upstream; no timing: the hold the test asks for is far longer than tap's timeout.
 */
import t, { type Test } from 'tap'
import { settled, startEdge, type TestEdge } from '../../helpers/edge.js'
import { until } from '../../helpers/wait.js'
import { IMMUTABLE, pattern, startUpstream } from '../upstream-server.js'

const SEG = '/vod/paced/v1/720p/seg-00001.m4s'
const SIZE = 2_000_000

async function setup(t: Test) {
  const body = pattern(SIZE, 7)
  const up = await startUpstream(t, {
    [SEG]: (_req, reply) =>
      reply.header('cache-control', IMMUTABLE).header('content-type', 'video/iso.segment').send(body),
  })
  const edge = await startEdge(t, { upstream: up.url, adminToken: TOKEN })
  return { up, edge, body }
}

const TOKEN = 'paced-fill-token'

/**
 * A paced fill of SEG whose pace holds the body an hour after its first chunk, once that chunk
 * was told: `told()` is how many bytes the pace was told so far.
 */
async function heldFill(edge: TestEdge) {
  let told = 0
  let first!: () => void
  const held = new Promise<void>((resolve) => (first = resolve))
  const fill = edge.app.edge.flights.fill(
    { key: SEG, path: SEG },
    {
      protect: true,
      pace: (n) => {
        told += n
        first()
        return 3_600_000
      },
    },
  )
  await held
  return { fill, told: () => told }
}

t.test('every chunk of a paced fill is told to the pace, and the object is stored whole', async (t) => {
  const { edge, up, body } = await setup(t)
  const told: number[] = []
  const r = await edge.app.edge.flights.fill(
    { key: SEG, path: SEG },
    {
      protect: true,
      pace: (n) => {
        told.push(n)
        return 1
      },
    },
  )
  t.same([r.how, r.status, r.bytes, r.stored], ['fetched', 200, SIZE, true])
  t.ok(told.length > 1, `${told.length} chunks paced`)
  t.equal(
    told.reduce((a, b) => a + b, 0),
    SIZE,
    'every byte charged to the pace',
  )
  await settled(edge)
  const got = await fetch(`${edge.url}${SEG}`)
  t.ok(Buffer.from(await got.arrayBuffer()).equals(body), 'the stored bytes')
  t.equal(up.count(SEG), 1)
})

t.test('a viewer joining a held paced fill is not paced: the body resumes for both', async (t) => {
  const { edge, up, body } = await setup(t)
  // Only a join can resume the body: the pace holds it far longer than the test may run.
  const { fill, told } = await heldFill(edge)
  const viewer = await fetch(`${edge.url}${SEG}`)
  t.equal(viewer.headers.get('x-cache'), 'COALESCED', 'the viewer joined the prefill fetch')
  t.ok(Buffer.from(await viewer.arrayBuffer()).equals(body), 'and got every byte')
  const r = await fill
  t.same([r.how, r.bytes, r.stored], ['fetched', SIZE, true], 'the fill completed too')
  t.ok(told() < SIZE, `paced until the viewer came (${told()} of ${SIZE} bytes), not after`)
  t.equal(up.count(SEG), 1, 'one upstream fetch')
})

t.test("a fill that joins a viewer's fetch does not pace it", async (t) => {
  const { edge, up } = await setup(t)
  let paced = 0
  const viewer = fetch(`${edge.url}${SEG}`)
  await until(() => edge.app.edge.flights.current(SEG) !== undefined || edge.app.edge.store.has(SEG))
  const r = await edge.app.edge.flights.fill(
    { key: SEG, path: SEG },
    {
      pace: (n) => {
        paced += n
        return 3_600_000
      },
    },
  )
  const v = await viewer
  await v.arrayBuffer()
  t.equal(v.status, 200)
  t.equal(r.stored, true)
  t.not(r.how, 'fetched', `the fill found the viewer's fetch (${r.how})`)
  t.equal(paced, 0, "a viewer's fetch is never paced")
  t.equal(up.count(SEG), 1, 'one upstream fetch')
})

t.test(
  'a purge of the title lifts the pace of a held fill: it answers, and the object is gone',
  async (t) => {
    const { edge, up } = await setup(t)
    // A purge that waited for the pace would never answer.
    const { fill, told } = await heldFill(edge)
    const purge = await fetch(`${edge.url}/admin/cache/vod/paced`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    t.equal(purge.status, 200, 'the purge answered while the fill was held by its pace')
    t.ok(told() < SIZE, `paced until the purge came (${told()} of ${SIZE} bytes), not after`)
    const r = await fill
    t.same([r.how, r.bytes], ['fetched', SIZE], 'the fill ended at the upstream pace')
    t.notOk(edge.app.edge.store.has(SEG), 'stored, then purged: the purge is not undone')
    t.equal(up.count(SEG), 1, 'one upstream fetch')
  },
)
