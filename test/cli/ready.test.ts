/**
 * The block `cdn demo` prints when ready (src/cli/demo/ready.ts), for the default topology: the
 * real path of the demo's TLS directory (no placeholder), and operator commands to paste that
 * carry the demo's admin token and, over HTTPS, `--ca` naming its CA as typed from the working
 * directory. test/e2e/npm-start.test.ts runs those commands against a running demo.
 */
import { join } from 'node:path'
import t from 'tap'
import { demoTlsFiles } from '../../src/cli/demo/demo-tls.js'
import { buildPlan, localPaths } from '../../src/cli/demo/plan.js'
import { readyBlock, tryCommands } from '../../src/cli/demo/ready.js'
import { loadTopology } from '../../src/cli/demo/topology.js'
import { repoPath } from '../helpers/repo.js'

const cwd = '/home/user/open-cdn'
const topo = loadTopology(repoPath('deploy/topology.json'))
const dataDir = join(cwd, 'data')
const tlsFiles = demoTlsFiles(dataDir)

t.test('over HTTPS: the real TLS directory, and commands with --ca and the admin token', async (t) => {
  const plan = buildPlan(topo, {
    paths: localPaths(dataDir),
    tls: { caCert: tlsFiles.caCert, cert: tlsFiles.chain, key: tlsFiles.key },
  })
  const tls = { ...tlsFiles, caSpki: 'c3BraQ==' }
  const block = readyBlock({ plan, dataDir, tls, adminToken: topo.adminToken, cwd, pid: 42 })
  t.notMatch(block, /DATA\//, 'no placeholder path')
  t.match(block, 'delete data/tls to start over', 'the directory to delete, as typed from here')
  t.match(block, 'a local CA made for this demo: data/tls/ca.pem')
  const [status, prefill, purge] = tryCommands({ plan, tls, adminToken: topo.adminToken, cwd }) as [
    string,
    string,
    string,
  ]
  t.equal(status, `npx cdn status --steering ${plan.steering.url} --ca data/tls/ca.pem`)
  t.match(plan.steering.url, /^https:/)
  t.match(
    prefill,
    new RegExp(
      `^npx cdn prefill --all-edges ${plan.steering.url} --ca data/tls/ca.pem --token ${topo.adminToken} [a-z0-9-]+$`,
    ),
  )
  t.match(
    purge,
    new RegExp(
      `^npx cdn purge --edge https://\\S+ --ca data/tls/ca.pem --token ${topo.adminToken} [a-z0-9-]+$`,
    ),
  )
  t.not(prefill.split(' ').at(-1), plan.prefill?.title, 'a title the demo did not prefill already')
  for (const c of [status, prefill, purge]) t.ok(block.includes(c), `printed: ${c}`)
  t.match(block, /CDN_ADMIN_TOKEN and CDN_CA/)
})

t.test('a data dir outside the working directory, with a space: absolute and quoted', async (t) => {
  const elsewhere = demoTlsFiles('/srv/cdn demo')
  const plan = buildPlan(topo, {
    paths: localPaths('/srv/cdn demo'),
    tls: { caCert: elsewhere.caCert, cert: elsewhere.chain, key: elsewhere.key },
  })
  const [status] = tryCommands({ plan, tls: { ...elsewhere, caSpki: 'x' }, adminToken: 'a b', cwd })
  t.match(status, / --ca '\/srv\/cdn demo\/tls\/ca\.pem'$/)
})

t.test('over plain HTTP: http URLs, no --ca', async (t) => {
  const plan = buildPlan(topo, { paths: localPaths(dataDir) })
  const block = readyBlock({ plan, dataDir, tls: undefined, adminToken: topo.adminToken, cwd, pid: 42 })
  const tries = tryCommands({ plan, tls: undefined, adminToken: topo.adminToken, cwd })
  for (const c of tries) {
    t.notMatch(c, /--ca|https:/, c)
    t.ok(block.includes(c))
  }
  t.match(tries[1], `--token ${topo.adminToken}`)
})
