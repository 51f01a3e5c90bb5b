/**
 * The operator commands against real nodes serving HTTPS with a private CA (as the demo's, in
 * data/tls/ca.pem): steering, an edge and an origin on loopback with certificates from a test
 * CA. Without --ca each command fails in one line naming the URL, the certificate error and the
 * hint; with --ca FILE (or CDN_CA) it goes through. `cdn prefill --all-edges` is refused on the
 * edges steering lists by https URL even when steering itself is asked over plain HTTP.
 */
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { command as ingest } from '../../src/cli/ingest.js'
import { command as prefill } from '../../src/cli/prefill.js'
import { command as purge } from '../../src/cli/purge.js'
import { command as status } from '../../src/cli/status.js'
import { parseCommand } from '../../src/config/options.js'
import { ORIGIN_SPEC, type OriginOptions } from '../../origin/config.js'
import { runOrigin } from '../../origin/main.js'
import { STEERING_SPEC, type SteeringOptions } from '../../steering/config-spec.js'
import { startSteering } from '../../steering/main.js'
import { runCommand } from '../helpers/cli.js'
import { startEdge } from '../helpers/edge.js'
import { tempDir } from '../helpers/origin.js'
import { writeOneEdgeFleet } from '../helpers/steering.js'
import { testCerts } from '../helpers/tls.js'
import { startUpstream } from '../edge/upstream-server.js'

const TOKEN = 'https-admin-token'
const SEG = '/vod/held/v1/720p/seg-00001.m4s'
/** A certificate no CA the client trusts signed: the chain's root is the test CA. */
const UNTRUSTED =
  /(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/

/** One line on stderr, naming the request, the certificate error and the hint. */
function certFailure(t: Test, r: { code: number; err: string; out: string }, cmd: string, what: RegExp) {
  t.equal(r.code, 1, `${cmd}: exit 1`)
  t.equal(r.err.split('\n').filter(Boolean).length, 1, `${cmd}: one line`)
  t.match(r.err, new RegExp(`^cdn ${cmd}: ${what.source}`), `${cmd}: names the request`)
  t.match(r.err, UNTRUSTED, `${cmd}: names the certificate error`)
  t.match(
    r.err,
    /\(--ca FILE to trust a private CA\)|; --ca FILE to trust a private CA\)/,
    `${cmd}: the hint`,
  )
  t.match(r.err, /\[CDN_ERR_UPSTREAM\]\n$/, `${cmd}: the code`)
}

t.test('status, prefill, purge and ingest over HTTPS with a private CA: --ca FILE or CDN_CA', async (t) => {
  const certs = await testCerts(t)
  const ca = certs.ca.caCert
  const tls = ['--tls-cert', certs.cert.cert, '--tls-key', certs.cert.key]
  const up = await startUpstream(t, {
    [SEG]: (_req, reply) => reply.header('cache-control', 'public, max-age=600').send(Buffer.alloc(100, 1)),
  })
  const edge = await startEdge(t, {
    upstream: up.url,
    adminToken: TOKEN,
    tlsCert: [certs.cert.cert],
    tlsKey: [certs.cert.key],
  })
  t.match(edge.url, /^https:/)

  const dir = await tempDir(t)
  const fleet = writeOneEdgeFleet(dir, edge.url)
  const steeringOptions = parseCommand<SteeringOptions>(
    STEERING_SPEC,
    ['--fleet', fleet, '--port', '0', '--log-level', 'silent', ...tls, '--http-port', '0'],
    {},
  ).config
  const steering = await startSteering({ ...steeringOptions, tlsReloadInterval: 0 })
  t.teardown(() => steering.close())
  t.match(steering.url, /^https:/)

  // status: steering over https.
  certFailure(t, await runCommand(status, ['--steering', steering.url]), 'status', /GET https:\S+\/edges: /)
  const seen = await runCommand(status, ['--steering', steering.url, '--ca', ca])
  t.equal(seen.code, 0, seen.err)
  t.match(seen.out, /^e1\s+rome\s/m, 'with --ca: the fleet')
  t.equal((await runCommand(status, ['--steering', steering.url], { CDN_CA: ca })).code, 0, 'CDN_CA too')

  // prefill --all-edges over plain HTTP to steering, which lists the edge by its https URL.
  const dry = ['--all-edges', steering.httpUrl!, '--token', TOKEN, '--dry-run', 'held']
  certFailure(t, await runCommand(prefill, dry), 'prefill', /POST https:\S+\/admin\/prefill: /)
  const planned = await runCommand(prefill, [...dry, '--ca', ca])
  t.equal(planned.code, 0, planned.err)
  t.match(planned.out, `${edge.url}: plan (dry run)`, 'with --ca: the plan of the https edge')

  // purge: the edge over https.
  certFailure(
    t,
    await runCommand(purge, ['--edge', edge.url, '--token', TOKEN, 'held']),
    'purge',
    /DELETE https:\S+\/admin\/cache\/vod\/held: /,
  )
  const purged = await runCommand(purge, ['--edge', edge.url, '--token', TOKEN, 'held'], { CDN_CA: ca })
  t.equal(purged.code, 0, purged.err)
  t.match(purged.out, /^held: purged \d+ objects$/m)

  // ingest --origin: an origin over https; its refusal of the title comes back with its code.
  const origin = await runOrigin(
    parseCommand<OriginOptions>(
      ORIGIN_SPEC,
      [
        '--store',
        join(dir, 'store'),
        '--port',
        '0',
        '--log-level',
        'silent',
        '--admin-token',
        TOKEN,
        '--ingest-dir',
        join(dir, 'ingest'),
        ...tls,
      ],
      {},
    ).config,
    undefined,
  )
  t.teardown(() => origin.close())
  t.match(origin.url, /^https:/)
  const job = ['src.mp4', '--title', 'Not-A-Title!', '--origin', origin.url, '--token', TOKEN]
  certFailure(t, await runCommand(ingest, job), 'ingest', /POST https:\S+\/jobs: /)
  const refused = await runCommand(ingest, [...job, '--ca', ca])
  t.equal(refused.code, 1)
  t.match(
    refused.err,
    /^cdn ingest: POST https:\S+\/jobs: 400 .*\[CDN_ERR_BAD_TITLE\]\n$/,
    "with --ca: the origin's own refusal",
  )
})

t.test('a --ca file that cannot be read is refused before any request', async (t) => {
  const r = await runCommand(status, ['--steering', 'https://127.0.0.1:9', '--ca', '/nonexistent/ca.pem'])
  t.equal(r.code, 2)
  t.match(r.err, /^cdn status: --ca: cannot read \/nonexistent\/ca\.pem \[CDN_ERR_CONFIG\]\n$/)
})
