/**
 * The redirect says why the client is not sent to its preferred edge (src/http/steered.ts):
 * the edge steering would choose were every edge up and unloaded. Edges here are contract
 * edges (test/helpers/steering.ts) whose reported load and health the test sets.
 */
import t from 'tap'
import { request } from 'undici'
import { edgeStatus, PLACES, startContractEdge, startSteering } from '../helpers/steering.js'

t.test(
  'no reason for the preferred edge; overloaded, then down, when it cannot take the client',
  async (t) => {
    const rome = await startContractEdge(t, 'rome-1')
    const nyc = await startContractEdge(t, 'nyc-1')
    const fleet = [
      { id: 'rome-1', url: rome.url, site: 'rome', ...PLACES.rome },
      { id: 'nyc-1', url: nyc.url, site: 'nyc', ...PLACES.newYork },
    ]
    const s = await startSteering(t, fleet, { failAfter: 1, recoverAfter: 1 })
    await s.health.checkNow()
    const play = async () => {
      const r = await request(`${s.url}/play/big-buck/master.m3u8?region=rome`)
      await r.body.dump()
      return { edge: r.headers['x-steering-edge'], location: r.headers.location as string }
    }
    t.same(await play(), { edge: 'rome-1', location: `${rome.url}/vod/big-buck/master.m3u8` })

    rome.status = edgeStatus('rome-1', { egressBytesPerSec: 9.5e8 })
    await s.health.checkNow()
    t.same(await play(), {
      edge: 'nyc-1',
      location: `${nyc.url}/steered/overloaded/vod/big-buck/master.m3u8`,
    })

    rome.mode = 'error'
    await s.health.checkNow()
    t.same(await play(), { edge: 'nyc-1', location: `${nyc.url}/steered/down/vod/big-buck/master.m3u8` })

    rome.mode = 'ok'
    rome.status = edgeStatus('rome-1')
    await s.health.checkNow()
    t.equal((await play()).location, `${rome.url}/vod/big-buck/master.m3u8`, 'back: no reason')
  },
)

t.test('with signing, the reason opens the path and the token follows it', async (t) => {
  const rome = await startContractEdge(t, 'rome-1')
  const nyc = await startContractEdge(t, 'nyc-1')
  const fleet = [
    { id: 'rome-1', url: rome.url, site: 'rome', ...PLACES.rome },
    { id: 'nyc-1', url: nyc.url, site: 'nyc', ...PLACES.newYork },
  ]
  const s = await startSteering(t, fleet, {
    failAfter: 1,
    recoverAfter: 1,
    signingKey: 'steered-reason-signing-key-0123456789',
  })
  rome.mode = 'error'
  await s.health.checkNow()
  const r = await request(`${s.url}/play/big-buck/master.m3u8?region=rome`)
  await r.body.dump()
  t.equal(r.headers['x-steering-edge'], 'nyc-1')
  const location = r.headers.location as string
  t.ok(location.startsWith(`${nyc.url}/steered/down/t/`), location)
  t.match(location, /\/steered\/down\/t\/[^/]+\/vod\/big-buck\/master\.m3u8$/)
})
