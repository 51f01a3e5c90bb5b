/**
 * The Kubernetes objects of one topology (deploy/topology.json, the file compose.yaml comes
 * from): the origin as a StatefulSet over a volume (or a Deployment over S3), every (site, tier)
 * group of edges as a DaemonSet on labelled nodes with host networking and a host-path disk
 * tier, steering as a Deployment with a Service, and the one-member etcd that edges register in
 * (edges on DaemonSets have addresses nobody knows in advance, so steering learns them from the
 * fleet registry, docs/steering.md). Pure: kubernetes.ts lays them out as a kustomize base and
 * overlays. Flags are those of `cdn origin|edge|steering --help`; sizes go in environment
 * variables so that an overlay's patch can change one without restating the argument list.
 */
import { formatSize, parseSize } from '../../config/units.js'
import { CdnError } from '../../errors.js'
import type { EdgeNode, Topology } from './topology.js'

export type K8sObject = Record<string, unknown> & {
  apiVersion: string
  kind: string
  metadata: { name: string }
}

export const IMAGE = 'open-cdn:local'
export const ETCD_IMAGE = 'quay.io/coreos/etcd:v3.5.17'
/** The edge's --inflight-budget default, stated so the memory limit's terms are all visible. */
export const INFLIGHT_BUDGET = '256MB'
/** What an edge holds beyond its memory tier and in-flight budget (docs/bench.md, the boundary). */
export const EDGE_OVERHEAD_BYTES = 150_000_000
const MI = 1024 * 1024
const ETCD_URL = 'http://etcd:2379'
const DATA = '/data'

/** The memory limit an edge needs: memory tier + in-flight budget + ~150 MB, in whole MiB. */
export function edgeMemoryLimit(memorySize: string, inflightBudget: string): string {
  const bytes = parseSize(memorySize)! + parseSize(inflightBudget)! + EDGE_OVERHEAD_BYTES
  return `${Math.ceil(bytes / MI)}Mi`
}

/** Edges of one site and tier: one DaemonSet, one pod per labelled node. */
export interface EdgeGroup extends Pick<
  EdgeNode,
  'site' | 'tier' | 'port' | 'upstream' | 'memorySize' | 'diskSize' | 'capacityBytesPerSec'
> {
  readonly name: string
  readonly lat: number
  readonly lon: number
  readonly edges: readonly string[]
}

export function edgeGroups(topo: Topology): EdgeGroup[] {
  const nameOf = (site: string, tier: 1 | 2) => (tier === 2 ? `edge-${site}-parent` : `edge-${site}`)
  const groupOf = new Map(topo.edges.map((e) => [e.id, nameOf(e.site, e.tier)]))
  const portOf = new Map(topo.edges.map((e) => [e.id, e.port]))
  const groups = new Map<string, EdgeGroup>()
  const problems: string[] = []
  for (const e of topo.edges) {
    const site = topo.sites.find((s) => s.id === e.site)!
    const upstream =
      e.upstream === 'origin' || e.upstream === topo.origin.id
        ? `http://${topo.origin.id}:${topo.origin.port}`
        : `http://${groupOf.get(e.upstream)!}:${portOf.get(e.upstream)!}`
    const g: EdgeGroup = {
      name: groupOf.get(e.id)!,
      site: e.site,
      tier: e.tier,
      port: e.port,
      upstream,
      memorySize: e.memorySize,
      diskSize: e.diskSize,
      capacityBytesPerSec: e.capacityBytesPerSec,
      lat: site.lat,
      lon: site.lon,
      edges: [e.id],
    }
    const had = groups.get(g.name)
    if (!had) {
      groups.set(g.name, g)
      continue
    }
    // Ports may differ: the demo puts every edge on one host, a DaemonSet one pod per node, so
    // the group listens on its first edge's port.
    for (const k of ['upstream', 'memorySize', 'diskSize', 'capacityBytesPerSec'] as const)
      if (had[k] !== g[k])
        problems.push(`${e.id}: ${k} differs from ${had.edges[0]!} (one DaemonSet per site and tier)`)
    groups.set(g.name, { ...had, edges: [...had.edges, e.id] })
  }
  if (problems.length) throw new CdnError('CDN_ERR_CONFIG', `topology for Kubernetes: ${problems.join('; ')}`)
  return [...groups.values()]
}

const meta = (name: string, component: string, extra: Record<string, unknown> = {}) => ({
  name,
  labels: {
    'app.kubernetes.io/name': 'open-cdn',
    'app.kubernetes.io/component': component,
    'open-cdn/node': name,
  },
  ...extra,
})
const selector = (name: string) => ({ matchLabels: { 'open-cdn/node': name } })
const scrape = (port: number) => ({
  'prometheus.io/scrape': 'true',
  'prometheus.io/port': String(port),
  'prometheus.io/path': '/metrics',
})
/**
 * `ready`: the readiness path (an edge's /readyz fails while it drains, steering's until it has
 * read the registry; /healthz never does).
 */
const probes = (port: number, startupFailures: number, ready = '/healthz') => ({
  startupProbe: { httpGet: { path: '/healthz', port }, periodSeconds: 10, failureThreshold: startupFailures },
  readinessProbe: { httpGet: { path: ready, port }, periodSeconds: 5, failureThreshold: 2 },
  livenessProbe: { httpGet: { path: '/healthz', port }, periodSeconds: 10, failureThreshold: 3 },
})
const env = (vars: Record<string, string>) => Object.entries(vars).map(([name, value]) => ({ name, value }))
const fromField = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } })
const secretEnv = (name: string, key: string) => ({
  name,
  valueFrom: { secretKeyRef: { name: 'open-cdn-admin', key } },
})
const service = (name: string, component: string, port: number): K8sObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: meta(name, component),
  spec: { selector: { 'open-cdn/node': name }, ports: [{ name: 'http', port, targetPort: port }] },
})

export function edgeObjects(
  g: EdgeGroup,
  sizes: { memory: string; disk: string; budget: string },
): K8sObject[] {
  const memory = edgeMemoryLimit(sizes.memory, sizes.budget)
  const daemonSet: K8sObject = {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: meta(g.name, 'edge'),
    spec: {
      selector: selector(g.name),
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: { labels: meta(g.name, 'edge').labels, annotations: scrape(g.port) },
        spec: {
          nodeSelector: { 'open-cdn/edge': 'true', 'open-cdn/site': g.site, 'open-cdn/tier': String(g.tier) },
          hostNetwork: true,
          // Host networking, yet the origin and parents are reached by their Service names.
          dnsPolicy: 'ClusterFirstWithHostNet',
          terminationGracePeriodSeconds: 30,
          initContainers: [
            {
              // A host path is created owned by root; the image runs as `node` (1000).
              name: 'cache-dir',
              image: IMAGE,
              command: ['sh', '-c', `mkdir -p ${DATA}/cache && chown -R 1000:1000 ${DATA}`],
              securityContext: { runAsUser: 0 },
              volumeMounts: [{ name: 'cache', mountPath: DATA }],
            },
          ],
          containers: [
            {
              name: 'edge',
              image: IMAGE,
              args: ['edge', '--host', '0.0.0.0', '--port', String(g.port), '--upstream', g.upstream],
              env: [
                fromField('NODE_NAME', 'spec.nodeName'),
                fromField('HOST_IP', 'status.hostIP'),
                ...env({
                  CDN_EDGE_ID: '$(NODE_NAME)',
                  CDN_EDGE_PUBLIC_URL: `http://$(HOST_IP):${g.port}`,
                  CDN_EDGE_CACHE_DIR: `${DATA}/cache`,
                  CDN_EDGE_MEMORY_SIZE: sizes.memory,
                  CDN_EDGE_DISK_SIZE: sizes.disk,
                  CDN_EDGE_INFLIGHT_BUDGET: sizes.budget,
                  CDN_EDGE_CAPACITY: formatSize(Math.round(g.capacityBytesPerSec)),
                  CDN_EDGE_SITE: g.site,
                  CDN_EDGE_LAT: String(g.lat),
                  CDN_EDGE_LON: String(g.lon),
                  CDN_EDGE_TIER: String(g.tier),
                  CDN_EDGE_REGISTRY_ETCD: ETCD_URL,
                  // Within terminationGracePeriodSeconds (30): 10 s out of the registry and the
                  // Service's endpoints while serving, then up to 20 s to close.
                  CDN_EDGE_DRAIN_DELAY: '10s',
                }),
                secretEnv('CDN_EDGE_ADMIN_TOKEN', 'token'),
              ],
              ports: [{ name: 'http', containerPort: g.port }],
              // No CPU limit: throttling would add its delay to every hit.
              resources: { requests: { cpu: '250m', memory }, limits: { memory } },
              ...probes(g.port, 6, '/readyz'),
              volumeMounts: [{ name: 'cache', mountPath: DATA }],
            },
          ],
          volumes: [
            { name: 'cache', hostPath: { path: `/var/lib/open-cdn/${g.name}`, type: 'DirectoryOrCreate' } },
          ],
        },
      },
    },
  }
  const pdb: K8sObject = {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(g.name, 'edge'),
    spec: { maxUnavailable: 1, selector: selector(g.name) },
  }
  // Parents get a Service: their children's --upstream names it.
  return g.tier === 2 ? [daemonSet, pdb, service(g.name, 'edge', g.port)] : [daemonSet, pdb]
}

/** The origin's container; `store` is a directory on the volume or s3://BUCKET/PREFIX. */
function originContainer(topo: Topology, store: 'volume' | 's3'): Record<string, unknown> {
  const port = topo.origin.port
  const samples = topo.samples.map((s) => `${s.title}:${s.seconds}`).join(',')
  return {
    name: 'origin',
    image: IMAGE,
    args: ['origin', '--id', topo.origin.id, '--host', '0.0.0.0', '--port', String(port)],
    env: [
      ...(store === 'volume'
        ? env({ CDN_ORIGIN_STORE: `${DATA}/store`, CDN_ORIGIN_INGEST_DIR: `${DATA}/ingest` })
        : [
            ...['CDN_ORIGIN_STORE', 'AWS_ENDPOINT_URL_S3', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'].map(
              (name) => ({ name, valueFrom: { secretKeyRef: { name: 'open-cdn-s3', key: name } } }),
            ),
            ...env({ CDN_ORIGIN_WORK_DIR: `${DATA}/work`, CDN_ORIGIN_INGEST_DIR: `${DATA}/ingest` }),
          ]),
      ...env({ CDN_ORIGIN_SAMPLES: samples }),
      secretEnv('CDN_ADMIN_TOKEN', 'token'),
    ],
    ports: [{ name: 'http', containerPort: port }],
    // ffmpeg uses every core it gets while it transcodes; the samples take minutes at first start.
    resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { memory: '2Gi' } },
    ...probes(port, 90),
    volumeMounts: [{ name: 'data', mountPath: DATA }],
  }
}

const originTemplate = (topo: Topology, store: 'volume' | 's3', volumes?: unknown[]) => ({
  metadata: { labels: meta(topo.origin.id, 'origin').labels, annotations: scrape(topo.origin.port) },
  spec: {
    securityContext: { fsGroup: 1000 },
    containers: [originContainer(topo, store)],
    ...(volumes ? { volumes } : {}),
  },
})

export function originObjects(topo: Topology, storage: string): K8sObject[] {
  const id = topo.origin.id
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: meta(id, 'origin'),
      spec: {
        serviceName: id,
        replicas: 1,
        selector: selector(id),
        template: originTemplate(topo, 'volume'),
        volumeClaimTemplates: [
          {
            metadata: { name: 'data' },
            spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage } } },
          },
        ],
      },
    },
    service(id, 'origin', topo.origin.port),
  ]
}

/** The stateless origin over an object store (overlays/origin-s3): any number of replicas. */
export function originS3Objects(topo: Topology): K8sObject[] {
  const id = topo.origin.id
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta(id, 'origin'),
      spec: {
        replicas: 2,
        selector: selector(id),
        template: originTemplate(topo, 's3', [{ name: 'data', emptyDir: {} }]),
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: meta('open-cdn-s3', 'origin'),
      type: 'Opaque',
      stringData: {
        CDN_ORIGIN_STORE: 's3://open-cdn/vod',
        AWS_ENDPOINT_URL_S3: 'http://object-store:8080',
        AWS_ACCESS_KEY_ID: 'replace-me',
        AWS_SECRET_ACCESS_KEY: 'replace-me',
      },
    },
  ]
}

export function steeringObjects(topo: Topology, replicas: number): K8sObject[] {
  const id = topo.steering.id
  const port = topo.steering.port
  const region = topo.regions.find((r) => r.name === topo.steering.defaultRegion)!
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta(id, 'steering'),
      spec: {
        replicas,
        selector: selector(id),
        template: {
          metadata: { labels: meta(id, 'steering').labels, annotations: scrape(port) },
          spec: {
            containers: [
              {
                name: 'steering',
                image: IMAGE,
                args: ['steering', '--host', '0.0.0.0', '--port', String(port)],
                env: env({
                  CDN_STEERING_FLEET: '/config/fleet.json',
                  CDN_STEERING_ZONES: '/config/zones.json',
                  CDN_STEERING_DEFAULT_LOCATION: `${region.lat},${region.lon}`,
                  CDN_STEERING_REGISTRY_ETCD: ETCD_URL,
                }),
                ports: [{ name: 'http', containerPort: port }],
                resources: { requests: { cpu: '250m', memory: '128Mi' }, limits: { memory: '512Mi' } },
                // Ready once it has read the registry (the fleet file lists no edge).
                ...probes(port, 6, '/readyz'),
                volumeMounts: [{ name: 'config', mountPath: '/config', readOnly: true }],
              },
            ],
            volumes: [{ name: 'config', configMap: { name: 'steering-config' } }],
          },
        },
      },
    },
    service(id, 'steering', port),
  ]
}

/** A single etcd member for the fleet registry; production runs three (or an operator's). */
export function etcdObjects(): K8sObject[] {
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: meta('etcd', 'registry'),
      spec: {
        serviceName: 'etcd',
        replicas: 1,
        selector: selector('etcd'),
        template: {
          metadata: { labels: meta('etcd', 'registry').labels },
          spec: {
            containers: [
              {
                name: 'etcd',
                image: ETCD_IMAGE,
                command: [
                  'etcd',
                  '--name=etcd-0',
                  '--data-dir=/var/lib/etcd',
                  '--listen-client-urls=http://0.0.0.0:2379',
                  `--advertise-client-urls=${ETCD_URL}`,
                ],
                ports: [{ name: 'client', containerPort: 2379 }],
                resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
                readinessProbe: { httpGet: { path: '/health', port: 2379 }, periodSeconds: 5 },
                volumeMounts: [{ name: 'data', mountPath: '/var/lib/etcd' }],
              },
            ],
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data' },
            spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
          },
        ],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('etcd', 'registry'),
      spec: {
        selector: { 'open-cdn/node': 'etcd' },
        ports: [{ name: 'client', port: 2379, targetPort: 2379 }],
      },
    },
  ]
}
