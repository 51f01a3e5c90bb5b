import t from 'tap'
import { MemoryStore } from '../../../edge/cache/memory-store.js'
import { put, storeContract } from './store-contract.js'

const make = async () =>
  new MemoryStore({ maxBytes: 400_000, maxEntryShare: 0.5, heuristicMaxMs: 86_400_000 })

t.test('memory store contract', async (t) => storeContract(t, make))

t.test('objects above the share stay out of memory', async (t) => {
  const store = await make()
  t.notOk(await put(store, '/big', Buffer.alloc(250_000)))
  t.notOk(store.has('/big'))
  t.ok(await put(store, '/small', Buffer.alloc(100_000)))
})

t.test('contiguous chunks of one allocation become one view, not a copy', async (t) => {
  const store = await make()
  const whole = Buffer.alloc(30_000, 9)
  const e = await put(store, '/v', whole, 1000)
  t.equal(e!.body!.buffer, whole.buffer, 'same memory')
})
