/**
 * How the operator commands fail, against real servers on loopback: a node that does not answer
 * is one line naming the request and the socket's own cause (never fetch's bare "fetch failed"
 * or a stack); a node that refuses with our JSON error is shown with its own code and message
 * (CDN_ERR_UNAUTHORIZED, CDN_ERR_BAD_BODY, CDN_ERR_NOT_FOUND, CDN_ERR_BAD_TITLE), keeping
 * CDN_ERR_UPSTREAM for no answer and for answers that are not ours.
 */
import { createServer } from 'node:http'
import t, { type Test } from 'tap'
import { command as ingest } from '../../src/cli/ingest.js'
import { command as prefill } from '../../src/cli/prefill.js'
import { command as purge } from '../../src/cli/purge.js'
import { command as status } from '../../src/cli/status.js'
import { type CliRun, runCommand } from '../helpers/cli.js'
import { startEdge } from '../helpers/edge.js'
import { ingestedStore, startOrigin, tempDir } from '../helpers/origin.js'
import { deadUrl, startHangingServer } from '../helpers/steering.js'
import { startUpstream } from '../edge/upstream-server.js'

const TOKEN = 'failures-token'

/** Exactly one line on stderr, `cdn CMD: ... [CODE]`, and no stack. */
function oneLine(t: Test, r: CliRun, line: RegExp, code = 1): void {
  t.equal(r.code, code, `exit ${code}`)
  t.equal(r.err.split('\n').filter(Boolean).length, 1, `one line: ${r.err}`)
  t.match(r.err, line)
  t.notMatch(r.err, /fetch failed|TypeError|\n\s+at /, 'no bare "fetch failed", no stack')
}

t.test('a node that does not answer: the request and the cause, for every command', async (t) => {
  const dead = await deadUrl()
  const refused = (cmd: string, req: string) =>
    new RegExp(
      `^cdn ${cmd}: ${req} ${dead}/\\S*: connect ECONNREFUSED 127\\.0\\.0\\.1:\\d+ \\[CDN_ERR_UPSTREAM\\]\\n$`,
    )
  oneLine(
    t,
    await runCommand(purge, ['--edge', dead, '--token', TOKEN, 'feature']),
    refused('purge', 'DELETE'),
  )
  oneLine(
    t,
    await runCommand(prefill, ['--edge', dead, '--token', TOKEN, 'feature']),
    refused('prefill', 'POST'),
  )
  oneLine(
    t,
    await runCommand(prefill, ['--all-edges', dead, '--token', TOKEN, 'feature']),
    refused('prefill', 'GET'),
  )
  oneLine(t, await runCommand(status, ['--steering', dead]), refused('status', 'GET'))
  const dir = await tempDir(t)
  oneLine(
    t,
    await runCommand(ingest, [`${dir}/a.mp4`, '--title', 'a', '--origin', dead, '--token', TOKEN]),
    refused('ingest', 'POST'),
  )
})

t.test('a node that never answers: the time limit, as CDN_ERR_UPSTREAM_TIMEOUT', async (t) => {
  const hanging = await startHangingServer(t)
  oneLine(
    t,
    await runCommand(status, ['--steering', hanging.url, '--timeout', '200ms']),
    /^cdn status: GET http:\S+\/edges: no answer within 200ms \[CDN_ERR_UPSTREAM_TIMEOUT\]\n$/,
  )
})

t.test("a node's JSON refusal keeps its own code and message", async (t) => {
  const up = await startUpstream(t, {})
  const edge = await startEdge(t, { upstream: up.url, adminToken: TOKEN })
  oneLine(
    t,
    await runCommand(purge, ['--edge', edge.url, '--token', 'wrong-token', 'feature']),
    /^cdn purge: DELETE http:\S+\/admin\/cache\/vod\/feature: 401 missing or wrong bearer token \[CDN_ERR_UNAUTHORIZED\]\n$/,
  )
  oneLine(
    t,
    await runCommand(prefill, ['--edge', edge.url, '--token', TOKEN, '--window', '25:00-26:00', 'feature']),
    /^cdn prefill: POST http:\S+\/admin\/prefill: 400 window: .* \[CDN_ERR_BAD_BODY\]\n$/,
  )
  oneLine(
    t,
    await runCommand(status, ['--steering', edge.url]),
    /^cdn status: GET http:\S+\/edges: 404 .+ \[CDN_ERR_NOT_FOUND\]\n$/,
    1,
  )
  const origin = await startOrigin(t, {
    store: await ingestedStore(t, { titles: [] }),
    adminToken: TOKEN,
    ingestDir: await tempDir(t),
  })
  oneLine(
    t,
    await runCommand(ingest, ['a.mp4', '--title', 'Bad!', '--origin', origin.url, '--token', TOKEN]),
    /^cdn ingest: POST http:\S+\/jobs: 400 .*\[CDN_ERR_BAD_TITLE\]\n$/,
  )
  oneLine(
    t,
    await runCommand(ingest, ['a.mp4', '--title', 'a', '--origin', origin.url, '--token', 'wrong-token']),
    /^cdn ingest: POST http:\S+\/jobs: 401 missing or wrong bearer token \[CDN_ERR_UNAUTHORIZED\]\n$/,
  )
})

t.test('an error answer that is not ours: its status and text, as CDN_ERR_UPSTREAM', async (t) => {
  const proxy = createServer((_req, res) => {
    res.writeHead(502, { 'content-type': 'text/html' }).end('<html><body>502 Bad Gateway</body></html>\n')
  })
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => proxy.close(() => r())))
  const url = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`
  oneLine(
    t,
    await runCommand(purge, ['--edge', url, '--token', TOKEN, 'feature']),
    /^cdn purge: DELETE http:\S+: 502 <html><body>502 Bad Gateway<\/body><\/html> \[CDN_ERR_UPSTREAM\]\n$/,
  )
})
