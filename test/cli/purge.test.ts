/**
 * `cdn purge` against a real edge over a real upstream: a held title is purged from both tiers
 * and the next request goes upstream again; a wrong token and a missing title fail with the
 * edge's reason and exit 1; no title at all is a usage error.
 */
import t from 'tap'
import { command } from '../../src/cli/purge.js'
import { startEdge } from '../helpers/edge.js'
import { startUpstream } from '../edge/upstream-server.js'
import { runCommand } from '../helpers/cli.js'

const TOKEN = 'purge-token-1'
const SEG = '/vod/held/v1/720p/seg-00001.m4s'

const run = (argv: string[]) => runCommand(command, argv)

t.test('cdn purge empties a title from the edge', async (t) => {
  const up = await startUpstream(t, {
    [SEG]: (_req, reply) => reply.header('cache-control', 'public, max-age=600').send(Buffer.alloc(1000, 7)),
  })
  const edge = await startEdge(t, { upstream: up.url, adminToken: TOKEN })
  await (await fetch(`${edge.url}${SEG}`)).arrayBuffer()
  await (await fetch(`${edge.url}${SEG}`)).arrayBuffer()
  t.equal(up.count(SEG), 1, 'held after the first request')

  const ok = await run(['--edge', edge.url, '--token', TOKEN, 'held'])
  t.equal(ok.code, 0, ok.err)
  t.match(ok.out, /^held: purged [1-9]\d* objects$/m)
  await (await fetch(`${edge.url}${SEG}`)).arrayBuffer()
  t.equal(up.count(SEG), 2, 'the next request went upstream again')

  const denied = await run(['--edge', edge.url, '--token', 'wrong', 'held'])
  t.equal(denied.code, 1)
  t.match(denied.err, /^held: 401 /m, "the edge's refusal, per title")
  t.equal(denied.out, '')

  await t.rejects(run(['--edge', edge.url, '--token', TOKEN]), { code: 'CDN_ERR_CONFIG' }, 'no TITLE')
  await t.rejects(run(['--edge', edge.url, '--token', TOKEN, '../etc']), 'a title that is not one')
})
