/**
 * deploy/kubernetes/ (the kustomize base and overlays) against its generator and the
 * Kubernetes schemas, without a cluster: the committed files are what `cdn demo
 * --emit-kubernetes .` writes; every object the generator builds, and every object `kubectl
 * kustomize` renders from the base and each overlay, validates against the schemas of
 * npm's kubernetes-models; and what each role needs is there (host networking and a host path
 * for edges on labelled nodes, a PDB per DaemonSet, probes on /healthz (edges and steering are
 * ready on /readyz: it fails while an edge drains, and until steering has read the registry),
 * scrape annotations,
 * memory limits that cover the edge's memory tier + in-flight budget + 150 MB).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { PassThrough } from 'node:stream'
import t, { type Test } from 'tap'
import { parseAllDocuments } from 'yaml'
import { command } from '../../src/cli/demo.js'
import { kubernetesFiles, KUBERNETES_DIR, OVERLAYS } from '../../src/cli/demo/kubernetes.js'
import {
  EDGE_OVERHEAD_BYTES,
  edgeGroups,
  edgeObjects,
  etcdObjects,
  INFLIGHT_BUDGET,
  type K8sObject,
  originObjects,
  originS3Objects,
  steeringObjects,
} from '../../src/cli/demo/kubernetes-objects.js'
import { loadTopology, parseTopology } from '../../src/cli/demo/topology.js'
import { parseDuration, parseSize } from '../../src/config/units.js'
import { root, topologyFile } from '../e2e/demo-helpers.js'

type Obj = K8sObject & { metadata: { namespace?: string }; spec?: Record<string, unknown> }
type Container = {
  name: string
  env?: { name: string; value?: string }[]
  resources?: { limits?: { memory?: string } }
  readinessProbe?: { httpGet?: { path: string } }
  livenessProbe?: { httpGet?: { path: string } }
}
type PodSpec = {
  containers: Container[]
  hostNetwork?: boolean
  nodeSelector?: Record<string, string>
  terminationGracePeriodSeconds?: number
  volumes?: { hostPath?: unknown }[]
}
const topo = loadTopology(topologyFile)
const dir = join(root, KUBERNETES_DIR)

/** Validates one object against the schema of its apiVersion and kind; throws what is wrong. */
async function validate(o: { apiVersion?: unknown; kind?: unknown }): Promise<void> {
  const mod = (await import(`kubernetes-models/${String(o.apiVersion)}/${String(o.kind)}`).catch(() => {
    throw new Error(`no schema for ${String(o.apiVersion)} ${String(o.kind)}`)
  })) as Record<string, new (o: unknown) => { validate(): void }>
  new mod[String(o.kind)]!(o).validate()
}

async function validateAll(t: Test, objects: readonly Obj[], what: string): Promise<void> {
  for (const o of objects)
    await t.resolves(validate(o), `${what}: ${o.kind} ${o.metadata.name} matches the schema`)
}

const podSpec = (o: Obj) => (o.spec!.template as { spec: PodSpec }).spec
const mi = (q: string) => Number(/^(\d+)Mi$/.exec(q)![1]) * 1024 * 1024

/** kubectl's kustomize, where the machine has it (the google-cloud-sdk kubectl here, v5 kustomize). */
function kustomize(path: string): string | undefined {
  try {
    return execFileSync('kubectl', ['kustomize', path], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** What every rendering must hold, whatever the overlay. */
function checkRoles(t: Test, objects: readonly Obj[], what: string): void {
  const daemonSets = objects.filter((o) => o.kind === 'DaemonSet')
  t.equal(daemonSets.length, edgeGroups(topo).length, `${what}: a DaemonSet per site and tier`)
  for (const ds of daemonSets) {
    const pod = podSpec(ds)
    t.equal(pod.hostNetwork, true, `${ds.metadata.name}: host network`)
    t.equal(pod.nodeSelector?.['open-cdn/edge'], 'true', `${ds.metadata.name}: on labelled nodes only`)
    t.ok(
      pod.volumes?.some((v) => v.hostPath),
      `${ds.metadata.name}: disk tier on a host path`,
    )
    const edge = pod.containers.find((c) => c.name === 'edge')!
    const val = (n: string) => parseSize(edge.env!.find((e) => e.name === n)!.value!)!
    const need = val('CDN_EDGE_MEMORY_SIZE') + val('CDN_EDGE_INFLIGHT_BUDGET') + EDGE_OVERHEAD_BYTES
    t.ok(
      mi(edge.resources!.limits!.memory!) >= need,
      `${ds.metadata.name}: memory limit ${edge.resources!.limits!.memory} covers tier + budget + 150 MB`,
    )
    const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget' && o.metadata.name === ds.metadata.name)
    t.same(pdb?.spec?.selector, ds.spec!.selector, `${ds.metadata.name}: a PDB over its pods`)
  }
  for (const kind of ['Deployment', 'Service'])
    t.ok(
      objects.some((o) => o.kind === kind && o.metadata.name === 'steering'),
      `${what}: steering ${kind}`,
    )
  t.ok(
    objects.some((o) => o.kind === 'Service' && o.metadata.name === topo.origin.id),
    `${what}: origin Service`,
  )
  for (const o of objects.filter((x) => ['DaemonSet', 'Deployment', 'StatefulSet'].includes(x.kind))) {
    if (o.metadata.name === 'etcd') continue
    const tpl = o.spec!.template as { metadata: { annotations?: Record<string, string> } }
    t.equal(tpl.metadata.annotations?.['prometheus.io/scrape'], 'true', `${o.metadata.name}: scraped`)
    t.equal(tpl.metadata.annotations?.['prometheus.io/path'], '/metrics', `${o.metadata.name}: at /metrics`)
    const main = podSpec(o).containers[0]!
    // An edge drains on SIGTERM (--drain-delay): not ready, still alive, within the grace period.
    // Steering is ready once it has read the registry.
    const edge = o.kind === 'DaemonSet'
    const ready = edge || o.metadata.name === 'steering' ? '/readyz' : '/healthz'
    t.equal(main.readinessProbe?.httpGet?.path, ready, `${o.metadata.name}: ready on ${ready}`)
    t.equal(main.livenessProbe?.httpGet?.path, '/healthz', `${o.metadata.name}: live on /healthz`)
    if (!edge) continue
    const drain = parseDuration(main.env?.find((e) => e.name === 'CDN_EDGE_DRAIN_DELAY')?.value ?? '')
    const grace = podSpec(o).terminationGracePeriodSeconds ?? 30
    t.ok(
      drain && drain > 0 && drain <= (grace * 1000) / 2,
      `${o.metadata.name}: drains ${drain} ms of ${grace} s`,
    )
  }
}

t.test('deploy/kubernetes/ is generated from the default topology', async (t) => {
  const want = kubernetesFiles(topo)
  const committed = (readdirSync(dir, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((d) => d.isFile())
    .map((d) => relative(dir, join(d.parentPath, d.name)))
    .sort()
  t.same(committed, Object.keys(want).sort(), 'no file missing, none left over')
  for (const [rel, text] of Object.entries(want))
    t.equal(
      readFileSync(join(dir, rel), 'utf8'),
      text,
      `${rel} is current (regenerate: cdn demo --emit-kubernetes .)`,
    )
})

t.test('`cdn demo --emit-kubernetes DIR` writes the same files', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'cdn-k8s-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const stdout = new PassThrough()
  const code = await command.run({
    argv: ['--topology', topologyFile, '--emit-kubernetes', out],
    env: {},
    stdout,
    stderr: new PassThrough(),
    stopSignal: new Promise(() => {}),
  })
  t.equal(code, 0)
  for (const [rel, text] of Object.entries(kubernetesFiles(topo)))
    t.equal(readFileSync(join(out, KUBERNETES_DIR, rel), 'utf8'), text, rel)
})

t.test('every object the generator builds matches the Kubernetes schemas', async (t) => {
  const small = { memory: '32MB', disk: '512MB', budget: '64MB' }
  const base = [
    ...edgeGroups(topo).flatMap((g) =>
      edgeObjects(g, { memory: g.memorySize, disk: g.diskSize, budget: INFLIGHT_BUDGET }),
    ),
    ...originObjects(topo, '1Gi'),
    ...steeringObjects(topo, 2),
    ...etcdObjects(),
  ]
  const others = [...edgeGroups(topo).flatMap((g) => edgeObjects(g, small)), ...originS3Objects(topo)]
  await validateAll(t, [...base, ...others], 'generated')
  checkRoles(t, base, 'generated')
})

t.test('the base and every overlay render with kustomize and match the schemas', async (t) => {
  for (const layer of ['base', ...OVERLAYS.map((o) => `overlays/${o}`)]) {
    const text = kustomize(join(dir, layer))
    if (text === undefined) {
      t.skip(
        `kubectl is not installed: ${layer} not rendered (the generated objects are validated above)`,
        () => {},
      )
      continue
    }
    const objects = parseAllDocuments(text).map((d) => d.toJS() as Obj)
    await validateAll(t, objects, layer)
    checkRoles(t, objects, layer)
    for (const o of objects.filter((x) => x.kind !== 'Namespace'))
      t.equal(o.metadata.namespace, 'open-cdn', `${layer}: ${o.kind} ${o.metadata.name} in the namespace`)
    const origin = objects.filter((o) => o.metadata.name === topo.origin.id && o.kind !== 'Service')
    t.same(
      origin.map((o) => o.kind),
      [layer.endsWith('origin-s3') ? 'Deployment' : 'StatefulSet'],
      `${layer}: the origin is one workload`,
    )
    if (layer.endsWith('local')) {
      const edge = podSpec(objects.find((o) => o.kind === 'DaemonSet')!).containers[0]!
      t.equal(edge.env?.find((e) => e.name === 'CDN_EDGE_MEMORY_SIZE')?.value, '32MB', 'local: smaller tiers')
    }
  }
})

t.test('the validator rejects a broken object, and a kind it has no schema for', async (t) => {
  const ds = edgeObjects(edgeGroups(topo)[0]!, { memory: '64MB', disk: '1GB', budget: '64MB' })[0]!
  await t.resolves(validate(ds))
  const broken = structuredClone(ds) as Obj
  const pod = podSpec(broken)
  pod.containers[0]!.resources!.limits!.memory = '470 megabytes'
  ;(pod.containers[0] as unknown as { ports: { containerPort: unknown }[] }).ports[0]!.containerPort = '8081'
  await t.rejects(validate(broken), /limits\/memory must match format "quantity"/)
  await t.rejects(validate(broken), /containerPort must be integer/)
  delete (broken.spec as { selector?: unknown }).selector
  await t.rejects(validate(broken), /must have required property '?selector/)
  await t.rejects(validate({ apiVersion: 'apps/v1', kind: 'DeamonSet' }), /no schema for apps\/v1 DeamonSet/)
})

t.test('edges of one site and tier must share their sizes and upstream', async (t) => {
  const doc = JSON.parse(readFileSync(topologyFile, 'utf8')) as { edges: Record<string, unknown>[] }
  doc.edges[2]!.memorySize = '256MB'
  t.throws(() => edgeGroups(parseTopology(doc)), {
    code: 'CDN_ERR_CONFIG',
    message: /rome-2: memorySize differs from rome-1/,
  })
})
