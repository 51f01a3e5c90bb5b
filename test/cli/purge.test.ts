/**
 * `cdn purge` against a real edge over a real upstream: a held title is purged from both tiers
 * and the next request goes upstream again; a wrong token fails with the edge's reason and code
 * and exit 1; no title at all is a usage error (exit 2); the token and the edge may come from the
 * environment, CDN_ADMIN_TOKEN as for every command, the older names still read.
 */
import t from 'tap'
import { command } from '../../src/cli/purge.js'
import { startEdge } from '../helpers/edge.js'
import { startUpstream } from '../edge/upstream-server.js'
import { runCommand } from '../helpers/cli.js'
import { deadUrl, PLACES, startSteering } from '../helpers/steering.js'

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
  t.match(
    denied.err,
    /^cdn purge: DELETE http:\S+\/admin\/cache\/vod\/held: 401 .*\[CDN_ERR_UNAUTHORIZED\]$/m,
    "the edge's refusal and code, per title",
  )
  t.equal(denied.out, '')

  const none = await run(['--edge', edge.url, '--token', TOKEN])
  t.equal(none.code, 2, 'no TITLE: a usage error')
  t.match(none.err, /^cdn purge: name at least one TITLE \[CDN_ERR_CONFIG\]$/m)
  const bad = await run(['--edge', edge.url, '--token', TOKEN, '../etc'])
  t.equal(bad.code, 1, 'a title that is not one')
  t.match(bad.err, /\[CDN_ERR_BAD_TITLE\]$/m)
})

t.test('cdn purge reads CDN_ADMIN_TOKEN, and the older CDN_EDGE_ADMIN_TOKEN and CDN_EDGE_URL', async (t) => {
  const up = await startUpstream(t, {})
  const edge = await startEdge(t, { upstream: up.url, adminToken: TOKEN })
  const shared = await runCommand(command, ['--edge', edge.url, 'held'], { CDN_ADMIN_TOKEN: TOKEN })
  t.equal(shared.code, 0, shared.err)
  t.match(shared.out, /^held: purged 0 objects$/m)
  const old = await runCommand(command, ['held'], { CDN_EDGE_ADMIN_TOKEN: TOKEN, CDN_EDGE_URL: edge.url })
  t.equal(old.code, 0, old.err)
  const own = await runCommand(command, ['held'], { CDN_ADMIN_TOKEN: TOKEN, CDN_PURGE_EDGE: edge.url })
  t.equal(own.code, 0, own.err)
  const missing = await runCommand(command, ['--edge', edge.url, 'held'])
  t.equal(missing.code, 2)
  t.match(missing.err, /--token: required \(or set CDN_ADMIN_TOKEN or CDN_EDGE_ADMIN_TOKEN\)/)
})

t.test(
  'cdn purge --edge PARENT --all-edges STEERING: the parent first, then every edge steering lists; an edge that does not answer fails alone',
  async (t) => {
    const up = await startUpstream(t, {
      [SEG]: (_req, reply) =>
        reply.header('cache-control', 'public, max-age=600').send(Buffer.alloc(1000, 7)),
    })
    const parent = await startEdge(t, { upstream: up.url, adminToken: TOKEN })
    const child = await startEdge(t, { upstream: parent.url, adminToken: TOKEN })
    const steering = await startSteering(t, [{ id: 'c1', url: child.url, site: 'rome', ...PLACES.rome }])
    await (await fetch(`${child.url}${SEG}`)).arrayBuffer()
    await (await fetch(`${child.url}${SEG}`)).arrayBuffer()
    t.equal(up.count(SEG), 1, 'held by the child and its parent')

    const both = await run(['--edge', parent.url, '--all-edges', steering.url, '--token', TOKEN, 'held'])
    t.equal(both.code, 0, both.err)
    t.same(
      both.out
        .trim()
        .split('\n')
        .map((l) => l.replace(/ purged \d+/, ' purged N')),
      [`${parent.url} held: purged N objects`, `${child.url} held: purged N objects`],
      'the parent, then the edge steering lists, each named',
    )
    t.match(both.out, new RegExp(`^${child.url} held: purged [1-9]\\d* objects$`, 'm'))
    t.match(both.out, new RegExp(`^${parent.url} held: purged [1-9]\\d* objects$`, 'm'))
    await (await fetch(`${child.url}${SEG}`)).arrayBuffer()
    t.equal(up.count(SEG), 2, 'neither tier refilled the child: the next request reached the upstream')

    // An edge named twice (given and listed) is purged once.
    const once = await run(['--edge', child.url, '--all-edges', steering.url, '--token', TOKEN, 'held'])
    t.equal(once.code, 0, once.err)
    t.equal(once.out.trim().split('\n').length, 1, 'one line: the child once')

    const dead = await deadUrl()
    const partly = await run(['--edge', dead, '--edge', child.url, '--token', TOKEN, 'held', 'other'])
    t.equal(partly.code, 1, 'a purge failed')
    t.match(
      partly.err,
      new RegExp(`^cdn purge: DELETE ${dead}/admin/cache/vod/held: .*\\[CDN_ERR_UPSTREAM\\]$`, 'm'),
    )
    t.notMatch(partly.err, /vod\/other/, 'the dead edge is not tried again for its next title')
    t.match(
      partly.out,
      new RegExp(`^${child.url} held: purged \\d+ objects$`, 'm'),
      'the next edge was purged',
    )
    t.match(partly.out, new RegExp(`^${child.url} other: purged \\d+ objects$`, 'm'))

    const neither = await run(['--token', TOKEN, 'held'])
    t.equal(neither.code, 2)
    t.match(
      neither.err,
      /^cdn purge: --edge URL or --all-edges STEERING_URL is required \[CDN_ERR_CONFIG\]$/m,
    )
    const badUrl = await run(['--edge', 'ftp://x', '--token', TOKEN, 'held'])
    t.equal(badUrl.code, 2)
    t.match(badUrl.err, /^cdn purge: --edge ftp:\/\/x: expected an http\(s\) URL \[CDN_ERR_CONFIG\]$/m)
  },
)
