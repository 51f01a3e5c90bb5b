/**
 * `cdn edge --workers 2` (the built CLI: run `npm run build` first) with one worker stopped
 * (SIGSTOP, a real worker process): connections still get answered (the one dealt to it goes to
 * the other worker once its deadline passes, and it is skipped until it answers again), /status
 * and /metrics still answer for both (its last numbers stand in for it), and no host counter
 * goes back, neither while it is silent nor after it is killed and replaced. Synchronised on
 * the primary's log lines and on the numbers it serves, never on time.
 */
import t from 'tap'
import { metricSum, until } from '../helpers/wait.js'
import { childrenOf, fromPrimary, get, startCluster } from './cluster-process.js'
import { pattern, startUpstream } from './upstream-server.js'

const PATH = '/vod/hung/v1/seg-00001.m4s'
const BODY = pattern(2048, 5)

t.test('a stopped worker does not take the host down, nor its counters back', async (t) => {
  const up = await startUpstream(t, {
    [PATH]: (_req, reply) => reply.header('cache-control', 'public, max-age=600').send(BODY),
  })
  const c = await startCluster(t, up.url, ['--log-level', 'info'])
  const logged = (msg: string) => c.log().includes(`"msg":"${msg}`)
  // Every requests_total the host reported, in order: a counter never goes back.
  const seen: number[] = []
  const requests = async () => {
    const text = (await fromPrimary(c, '/metrics')).body.toString()
    seen.push(metricSum(text, 'cdn_edge_requests_total'))
    return seen.at(-1)!
  }
  const served = async (n: number) => {
    const answers: string[] = []
    for (let i = 0; i < n; i++) {
      const r = await get(c, PATH)
      answers.push(r.status === 200 && r.body.equals(BODY) ? 'ok' : `${r.status}`)
    }
    return answers
  }
  /** Waits for an answer that counts every request made, then checks it counts no more. */
  const counted = async (what: string) => {
    await until(async () => (await requests()) >= c.content, 50)
    t.equal(seen.at(-1), c.content, `${what}: requests_total is the requests made`)
  }

  t.same(await served(4), Array(4).fill('ok'), 'both workers serve')
  await counted('both workers')

  const [stopped] = childrenOf(c.pid)
  process.kill(stopped!, 'SIGSTOP')
  t.same(await served(6), Array(6).fill('ok'), 'every connection answered, one worker stopped')
  await until(() => logged('an edge worker did not take a connection in time'))
  t.pass('the primary skips the stopped worker')
  await counted('the stopped worker counted as it last answered')
  const status = JSON.parse((await fromPrimary(c, '/status')).body.toString()) as { workers: number }
  t.equal(status.workers, 2, '/status answers for both workers')

  process.kill(stopped!, 'SIGCONT')
  await until(() => logged('an edge worker answers again'))
  t.pass('the primary heard from it again')
  t.same(await served(4), Array(4).fill('ok'), 'both workers serve again')
  await counted('resumed (the connection it was dealt while stopped was served once, elsewhere)')

  process.kill(stopped!, 'SIGKILL')
  await until(async () => {
    const now = childrenOf(c.pid)
    if (now.length !== 2 || now.includes(stopped!)) return false
    const s = JSON.parse((await fromPrimary(c, '/status')).body.toString()) as { workers: number }
    return s.workers === 2
  }, 50)
  t.pass('replaced')
  t.same(await served(2), Array(2).fill('ok'))
  await counted('a worker killed and replaced: its counts kept')
  t.same(
    seen,
    [...seen].sort((a, b) => a - b),
    'requests_total never went back',
  )
  c.proc.kill('SIGTERM')
  t.same(await c.exit, { code: 0, signal: null }, 'stops cleanly')
})
