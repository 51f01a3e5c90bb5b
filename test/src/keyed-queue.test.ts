import t from 'tap'
import { KeyedQueue } from '../../src/keyed-queue.js'

/** A task that records its start and finishes when told to. */
function gate(log: string[], name: string) {
  let open!: () => void
  const opened = new Promise<void>((resolve) => (open = resolve))
  return {
    task: async () => {
      log.push(`start ${name}`)
      await opened
      log.push(`end ${name}`)
      return name
    },
    open,
  }
}

t.test('one key runs in order, one at a time; another key runs beside it', async (t) => {
  const q = new KeyedQueue()
  const log: string[] = []
  const a1 = gate(log, 'a1')
  const a2 = gate(log, 'a2')
  const b1 = gate(log, 'b1')
  const r1 = q.run('a', a1.task)
  const r2 = q.run('a', a2.task)
  const r3 = q.run('b', b1.task)
  await Promise.resolve()
  await Promise.resolve()
  t.same(log, ['start a1', 'start b1'], 'a2 waits for a1; b1 does not')
  t.equal(q.size, 2)
  a2.open()
  b1.open()
  t.equal(await r3, 'b1')
  t.notOk(log.includes('start a2'), 'a2 still waits although it was released')
  a1.open()
  t.same(await Promise.all([r1, r2]), ['a1', 'a2'])
  t.same(
    log.filter((l) => / a\d$/.test(l)),
    ['start a1', 'end a1', 'start a2', 'end a2'],
  )
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(q.size, 0, 'no key is held once its tasks are done')
})

t.test("a failure is its caller's alone: the next task of the key still runs", async (t) => {
  const q = new KeyedQueue()
  const failed = q.run('k', () => Promise.reject(new Error('boom')))
  const next = q.run('k', async () => 'ran')
  await t.rejects(failed, /boom/)
  t.equal(await next, 'ran')
})
