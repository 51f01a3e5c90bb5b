import t from 'tap'
import { DiskStore } from '../../../edge/cache/disk-store.js'
import { MemoryStore } from '../../../edge/cache/memory-store.js'
import { TieredStore } from '../../../edge/cache/tiered-store.js'
import { tempDir } from '../../helpers/edge.js'
import { put, storeContract } from './store-contract.js'

async function make(dir: string, memory = 300_000) {
  const heuristicMaxMs = 86_400_000
  return new TieredStore(
    new MemoryStore({ maxBytes: memory, maxEntryShare: 0.2, heuristicMaxMs }),
    await DiskStore.open({ dir, maxBytes: 800_000, protectedShare: 0.5, maxFds: 8, heuristicMaxMs }),
  )
}

t.test('tiered store contract', async (t) => storeContract(t, async (t) => make(tempDir(t))))

t.test('disk hits are promoted to memory when they fit; big objects stay on disk', async (t) => {
  const dir = tempDir(t)
  const a = await make(dir)
  await put(a, '/small', Buffer.alloc(10_000, 1))
  await put(a, '/big', Buffer.alloc(100_000, 2))
  t.ok(a.memory.has('/small'))
  t.notOk(a.memory.has('/big'), 'above the memory share')
  await a.close()
  const b = await make(dir)
  t.notOk(b.memory.has('/small'))
  t.equal((await b.get('/small'))!.tier, 'disk')
  t.equal((await b.get('/small'))!.tier, 'memory', 'promoted')
  t.equal((await b.get('/big'))!.tier, 'disk')
  t.equal((await b.get('/big'))!.tier, 'disk', 'never promoted')
})

t.test('a miss body is lent from the pool only when memory will not keep it', async (t) => {
  const a = await make(tempDir(t))
  t.equal(a.lendBody(10_000), undefined, 'memory keeps views of what it is written: never pooled')
  const lease = a.lendBody(100_000)
  t.equal(lease?.buf.length, 100_000, 'a body only disk takes comes from the pool')
  t.equal(a.stats().poolBytes, 100_000, 'counted while lent')
  lease!.release()
  const fill = a.lendBody(10_000, { protected: true, key: '/fill' })
  t.equal(fill?.buf.length, 10_000, "a prefill's body (written to disk only) comes from the pool at any size")
  fill!.release()
  t.equal(
    a.lendBody(10_000, { protected: false, key: '/viewer' }),
    undefined,
    "a viewer's small body is still memory's",
  )
  await a.close()
  t.equal(a.stats().poolBytes, 0, 'closing gives the idle buffers back')
})
