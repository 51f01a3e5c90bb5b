/**
 * deploy/kubernetes/ from the topology, as compose.yaml is (`cdn demo --emit-kubernetes .`): a
 * kustomize base with every role (kubernetes-objects.ts) and two overlays, `local` (one small
 * machine: smaller tiers and volumes, one steering replica) and `origin-s3` (the origin as a
 * stateless Deployment over an object store instead of a StatefulSet over a volume). Overlays
 * are strategic-merge patches that `kubectl apply -k` renders; the patches come from the same
 * functions as the base, so a limit stays consistent with the sizes it is computed from.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { stringify } from 'yaml'
import { buildPlan } from './plan.js'
import {
  edgeGroups,
  edgeObjects,
  etcdObjects,
  INFLIGHT_BUDGET,
  type K8sObject,
  originObjects,
  originS3Objects,
  steeringObjects,
} from './kubernetes-objects.js'
import type { Topology } from './topology.js'

export const KUBERNETES_DIR = 'deploy/kubernetes'
export const OVERLAYS = ['local', 'origin-s3'] as const
const NAMESPACE = 'open-cdn'
/** The local overlay's sizes: a laptop's cluster (kind, minikube) holds every pod. */
const LOCAL = { memory: '32MB', disk: '512MB', budget: '64MB', originStorage: '2Gi' }

const header = (source: string) =>
  `# Generated from ${source} by \`cdn demo --emit-kubernetes .\` (see docs/kubernetes.md).\n` +
  '# Do not edit by hand: change the topology or src/cli/demo/kubernetes*.ts and regenerate.\n'
const yaml = (source: string, objects: readonly unknown[]) =>
  header(source) + objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n')

const kustomization = (fields: Record<string, unknown>) => ({
  apiVersion: 'kustomize.config.k8s.io/v1beta1',
  kind: 'Kustomization',
  ...fields,
})

/** The part of an object a patch names it by. */
const target = (o: K8sObject) => ({
  apiVersion: o.apiVersion,
  kind: o.kind,
  metadata: { name: o.metadata.name },
})

/** A patch of the edge container's sizes and the resources they imply, from a full object. */
function containerPatch(o: K8sObject, container: string, envNames: readonly string[]): unknown {
  const spec = (o.spec as { template: { spec: { containers: Record<string, unknown>[] } } }).template.spec
  const c = spec.containers.find((x) => x.name === container)!
  const env = (c.env as { name: string }[]).filter((e) => envNames.includes(e.name))
  return {
    ...target(o),
    spec: { template: { spec: { containers: [{ name: container, env, resources: c.resources }] } } },
  }
}

/** Every file under deploy/kubernetes/, by path relative to it. */
export function kubernetesFiles(topo: Topology, source = 'deploy/topology.json'): Record<string, string> {
  const plan = buildPlan(topo, { paths: { nodeDir: () => '/data', configDir: '/config' } })
  const groups = edgeGroups(topo)
  const baseSizes = (g: (typeof groups)[number]) => ({
    memory: g.memorySize,
    disk: g.diskSize,
    budget: INFLIGHT_BUDGET,
  })
  const edges = groups.flatMap((g) => edgeObjects(g, baseSizes(g)))
  const origin = originObjects(topo, '10Gi')
  const steering = steeringObjects(topo, 2)
  const out: Record<string, string> = {}
  const put = (path: string, objects: readonly unknown[]) => (out[path] = yaml(source, objects))

  put('base/kustomization.yaml', [
    kustomization({
      namespace: NAMESPACE,
      labels: [{ pairs: { 'app.kubernetes.io/part-of': 'open-cdn' } }],
      resources: ['namespace.yaml', 'secret.yaml', 'etcd.yaml', 'origin.yaml', 'edges.yaml', 'steering.yaml'],
      configMapGenerator: [{ name: 'steering-config', files: ['fleet.json', 'zones.json'] }],
    }),
  ])
  put('base/namespace.yaml', [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } }])
  put('base/secret.yaml', [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'open-cdn-admin' },
      type: 'Opaque',
      // The demo's token: replace it (docs/kubernetes.md).
      stringData: { token: topo.adminToken },
    },
  ])
  put('base/etcd.yaml', etcdObjects())
  put('base/origin.yaml', origin)
  put('base/edges.yaml', edges)
  put('base/steering.yaml', steering)
  // Edges on DaemonSets register themselves: the file lists none, the zones are the demo's.
  out['base/fleet.json'] = `${JSON.stringify({ edges: [] }, null, 2)}\n`
  out['base/zones.json'] = `${JSON.stringify(plan.zones, null, 2)}\n`

  const sizeEnv = ['CDN_EDGE_MEMORY_SIZE', 'CDN_EDGE_DISK_SIZE', 'CDN_EDGE_INFLIGHT_BUDGET']
  const localEdges = groups
    .flatMap((g) => edgeObjects(g, LOCAL))
    .filter((o) => o.kind === 'DaemonSet')
    .map((o) => containerPatch(o, 'edge', sizeEnv))
  const localOrigin = originObjects(topo, LOCAL.originStorage)[0]!
  put('overlays/local/kustomization.yaml', [
    kustomization({
      namespace: NAMESPACE,
      resources: ['../../base'],
      patches: [{ path: 'edges.yaml' }, { path: 'origin.yaml' }, { path: 'steering.yaml' }],
    }),
  ])
  put('overlays/local/edges.yaml', localEdges)
  put('overlays/local/origin.yaml', [
    {
      ...target(localOrigin),
      spec: { volumeClaimTemplates: (localOrigin.spec as Record<string, unknown>).volumeClaimTemplates },
    },
  ])
  put('overlays/local/steering.yaml', [{ ...target(steering[0]!), spec: { replicas: 1 } }])

  put('overlays/origin-s3/kustomization.yaml', [
    kustomization({
      namespace: NAMESPACE,
      resources: ['../../base', 'origin.yaml'],
      patches: [{ path: 'delete-statefulset.yaml' }],
    }),
  ])
  put('overlays/origin-s3/origin.yaml', originS3Objects(topo))
  put('overlays/origin-s3/delete-statefulset.yaml', [{ $patch: 'delete', ...target(origin[0]!) }])
  return out
}

/** Writes DIR/deploy/kubernetes/...; returns the paths written. */
export function writeKubernetes(topo: Topology, dir: string): string[] {
  const files = kubernetesFiles(topo)
  const written: string[] = []
  for (const [rel, text] of Object.entries(files)) {
    const path = join(dir, KUBERNETES_DIR, rel)
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, text)
    written.push(path)
  }
  return written
}
