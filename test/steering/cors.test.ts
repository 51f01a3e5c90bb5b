import t from 'tap'
import { request } from 'undici'
import { PLACES, startContractEdge, startSteering } from '../helpers/steering.js'

const ORIGIN = 'http://player.example'

t.test('every steering answer lets a page of another origin read it; OPTIONS is answered', async (t) => {
  const edge = await startContractEdge(t, 'rome-1')
  const s = await startSteering(
    t,
    // The helper's check timeout (30 s): the first health round finds the edge up even on a
    // loaded machine, where a 5 s bound could leave it unchecked (/play a 503, not the 302).
    [{ id: 'rome-1', url: edge.url, site: 'rome', ...PLACES.rome }],
  )
  const routes: [string, number][] = [
    ['/play/feature/master.m3u8', 302],
    ['/steer?title=feature', 200],
    ['/cs/feature/master.m3u8', 200],
    ['/cs/steer?title=feature', 200],
    ['/edges', 200],
    ['/regions', 200],
    ['/assets/player.js', 200],
    ['/steer?title=Bad!', 400],
    ['/no/such/route', 404],
    ['/play/%ff/master.m3u8', 400],
  ]
  for (const [path, status] of routes) {
    const res = await request(`${s.url}${path}`, { headers: { origin: ORIGIN } })
    const body = await res.body.text()
    t.equal(res.statusCode, status, `${path}: ${status}`)
    t.equal(res.headers['access-control-allow-origin'], '*', `${path}: Access-Control-Allow-Origin`)
    if (status >= 400)
      t.match(JSON.parse(body), { error: { code: /^CDN_ERR_/ } }, `${path}: the JSON error body`)
  }
  const play = await request(`${s.url}/play/feature/master.m3u8`, { headers: { origin: ORIGIN } })
  await play.body.dump()
  t.match(
    play.headers['access-control-expose-headers'],
    /X-Steering-Edge/,
    'the chosen edge is readable by the page',
  )

  for (const path of ['/play/feature/master.m3u8', '/cs/steer?title=feature', '/steer?title=feature']) {
    const pre = await request(`${s.url}${path}`, {
      method: 'OPTIONS',
      headers: {
        origin: ORIGIN,
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'range',
      },
    })
    t.equal(pre.statusCode, 204, `preflight of ${path}: 204`)
    t.equal(await pre.body.text(), '', 'with no body')
    t.equal(pre.headers['access-control-allow-origin'], '*')
    t.match(pre.headers['access-control-allow-methods'], /GET/)
    t.match(String(pre.headers['access-control-allow-headers']).toLowerCase(), /range/)
  }
})

t.test('the pages load everything from steering itself: libraries, map data, favicon', async (t) => {
  const edge = await startContractEdge(t, 'rome-1')
  const s = await startSteering(
    t,
    // The helper's check timeout (30 s): the first health round finds the edge up even on a
    // loaded machine, where a 5 s bound could leave it unchecked (/play a 503, not the 302).
    [{ id: 'rome-1', url: edge.url, site: 'rome', ...PLACES.rome }],
  )
  const expect: [string, RegExp, RegExp][] = [
    ['/assets/hls.js', /javascript/, /Hls/],
    ['/assets/d3-array.js', /javascript/, /d3/],
    ['/assets/d3-geo.js', /javascript/, /geoPath/],
    ['/assets/topojson-client.js', /javascript/, /topojson/],
    ['/assets/countries-110m.json', /json/, /"countries"/],
    ['/favicon.ico', /svg/, /<svg/],
    ['/assets/favicon.svg', /svg/, /<svg/],
  ]
  for (const [path, type, body] of expect) {
    const res = await request(`${s.url}${path}`)
    const text = await res.body.text()
    t.equal(res.statusCode, 200, `${path}: 200`)
    t.match(res.headers['content-type'], type, `${path}: ${type}`)
    t.match(text.slice(0, 200_000), body, `${path}: the real file`)
  }
  for (const page of ['/', '/fleet']) {
    const html = await (await request(`${s.url}${page}`)).body.text()
    for (const m of html.matchAll(/(?:src|href)="([^"]+)"/g)) {
      const url = m[1]!
      t.ok(url.startsWith('/'), `${page} links ${url} on steering itself, no outside host`)
      const res = await request(`${s.url}${url}`)
      await res.body.dump()
      t.equal(res.statusCode, 200, `${page}: ${url} is served`)
    }
  }
})
