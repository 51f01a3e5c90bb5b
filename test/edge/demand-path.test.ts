/**
 * The request path feeds the demand model (`--disk-eviction demand`, `--disk-admission demand`,
 * the defaults; edge/cache/demand.ts): every content request is counted once, whichever path
 * answers it, and once the disk is full a miss the model expects no one to ask for again stays
 * in memory only.
 */
import t from 'tap'
import { DemandAdmission } from '../../edge/cache/demand-order.js'
import { settled } from '../helpers/edge.js'
import { get } from './http-get.js'
import { segmentEdge } from './segment-edge.js'

const SEG = (title: string, n = 1) => `/vod/${title}/v1/720p/seg-${String(n).padStart(5, '0')}.m4s`

t.test('every content request reaches the model; the disk admits by expected demand', async (t) => {
  // Room on disk for two segments; memory large enough to serve the repeats. No policy given:
  // the edge's defaults.
  const { up, edge, store } = await segmentEdge(t, {})
  const admission = store.admission as DemandAdmission
  t.ok(admission instanceof DemandAdmission && admission.decides, 'the disk admits by demand')
  t.ok(store.disk.index.order, 'the disk index evicts by demand')
  for (let i = 0; i < 4; i++) t.equal((await get(edge.url + SEG('a'))).status, 200)
  await settled(edge)
  t.equal(up.count(SEG('a')), 1, 'one upstream fetch')
  t.equal(admission.model.recorded, 4, 'four requests counted: a miss and three memory hits')
  t.equal((await get(edge.url + SEG('b'))).status, 200)
  await settled(edge)
  t.ok(store.disk.has(SEG('a')) && store.disk.has(SEG('b')), 'room: both on disk')
  // Segment 300 of a title nobody started: the disk is full and its victim (b) was started once.
  t.equal((await get(edge.url + SEG('c', 300))).status, 200)
  await settled(edge)
  t.notOk(store.disk.has(SEG('c', 300)), 'not written to disk')
  t.ok(store.disk.has(SEG('a')) && store.disk.has(SEG('b')), 'both started segments stay')
  t.same([admission.admitted, admission.refused], [2, 1])
  t.equal(admission.model.recorded, 6)
})
