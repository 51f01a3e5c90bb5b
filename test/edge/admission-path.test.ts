/**
 * The request path feeds the disk tier's TinyLFU admission (edge/cache/admission.ts, with
 * `--disk-eviction lru`): every content request is counted once, whether the fast memory hit,
 * the raw hit path or the full path answers it, and a one-off miss is refused by the disk tier
 * once it is full.
 */
import t from 'tap'
import type { TinyLfuAdmission } from '../../edge/cache/admission.js'
import { settled } from '../helpers/edge.js'
import { get } from './http-get.js'
import { segmentEdge } from './segment-edge.js'

const SEG = (title: string) => `/vod/${title}/v1/720p/seg-00001.m4s`

t.test('every content request counts once; the disk tier admits against its victim', async (t) => {
  // Room on disk for two segments; memory large enough to serve the repeats.
  // LRU eviction: the victim TinyLFU compares against is the least recently used segment.
  const { up, edge, store } = await segmentEdge(t, { diskAdmission: 'tinylfu', diskEviction: 'lru' })
  const admission = store.admission as TinyLfuAdmission
  for (let i = 0; i < 4; i++) t.equal((await get(edge.url + SEG('a'))).status, 200)
  await settled(edge)
  t.equal(up.count(SEG('a')), 1, 'one upstream fetch')
  t.equal(admission.frequency(SEG('a')), 4, 'four requests counted: a miss and three memory hits')
  t.equal((await get(edge.url + SEG('b'))).status, 200)
  await settled(edge)
  t.ok(store.disk.has(SEG('a')) && store.disk.has(SEG('b')), 'room: both on disk')
  // A third segment, asked once: the disk is full and its victim (a) was asked four times.
  t.equal((await get(edge.url + SEG('c'))).status, 200)
  await settled(edge)
  t.notOk(store.disk.has(SEG('c')), 'a one-off miss is not written to disk')
  t.ok(store.disk.has(SEG('a')), 'the popular segment stays on disk')
  t.same([admission.admitted, admission.refused], [2, 1])
})
