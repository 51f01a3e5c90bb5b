/**
 * Steering's HTTP API (see docs/steering.md):
 *   GET /play/{title}/master.m3u8   302 to the chosen edge's master (signed if a key is set)
 *   GET /steer?title=T              ranked JSON list for players that fail over themselves
 *   GET /cs/{title}/master.m3u8     HLS Content Steering master, one Pathway per candidate edge
 *   GET /cs/steer?title=T&pathways=A,B[&failed=B]  the steering manifest: { VERSION, TTL,
 *                                   PATHWAY-PRIORITY }
 *                                   over the master's Pathways A,B only
 *   GET /edges  GET /regions        fleet state for the dashboard; named places for the player
 * Location overrides on every decision route: ?lat=&lon= or ?region=.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Agent } from 'undici'
import type { Clock } from '../src/clock.js'
import { CdnError } from '../src/errors.js'
import { bears } from '../src/http/auth.js'
import { assertTitle } from '../src/http/paths.js'
import type { EdgeStatus } from '../src/http/status.js'
import { steeredPrefix } from '../src/http/steered.js'
import type { SteeringConfig } from './config.js'
import { parsePathwayIds, pathwayPriority, steeringManifest, steeringMaster } from './content-steering.js'
import { fetchMaster } from './master-fetch.js'
import type { Decider, RequestFacts } from './decider.js'
import type { HealthMonitor } from './health.js'
import type { DecisionKind, SteeringMetrics } from './metrics.js'
import type { Registry } from './registry.js'

interface Deps {
  config: SteeringConfig
  registry: Registry
  decider: Decider
  health: HealthMonitor
  upstreams: HealthMonitor
  metrics: SteeringMetrics
  clock: Clock
  /** PEM CA certificates trusted for https edges (--edge-ca) instead of the system's. */
  edgeCa?: readonly string[] | undefined
}

type Q = Record<string, string | undefined>

const MAX_MASTER_BYTES = 1 << 20

function facts(req: FastifyRequest): RequestFacts {
  return {
    socketAddress: req.socket.remoteAddress,
    forwardedFor: req.headers['x-forwarded-for'],
    query: req.query as Q,
  }
}

const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d

/** Location override parameters, carried from a master request into its steering URI. */
function overrideParams(q: Q): string {
  const p = new URLSearchParams()
  for (const k of ['region', 'lat', 'lon'] as const) if (q[k]) p.set(k, q[k])
  const s = p.toString()
  return s ? `&${s}` : ''
}

export function steeringRoutes(app: FastifyInstance, deps: Deps): void {
  const { config, decider, metrics, clock, health, registry } = deps
  const watched = registry.upstreams ?? []
  // Fetches content-steering masters from the edges: the same trust as the health checks.
  const agent = new Agent({
    connect: { timeout: config.checkTimeoutMs, ...(deps.edgeCa ? { ca: [...deps.edgeCa] } : {}) },
    headersTimeout: config.checkTimeoutMs * 2,
    bodyTimeout: config.checkTimeoutMs * 2,
  })
  app.addHook('onClose', async () => agent.close())

  /** Runs a decision, counting its outcome; 503s and 400s are counted and rethrown. */
  const decide = (kind: DecisionKind, req: FastifyRequest, title: string, max?: number) => {
    const t0 = clock.monotonic()
    try {
      const d = decider.decide(facts(req), title, max)
      const seconds = (clock.monotonic() - t0) / 1000
      metrics.decision(kind, d.view.failStatic ? 'fail-static' : 'ok', d.ranked[0]!.edge.id, seconds)
      return d
    } catch (err) {
      const code = (err as CdnError).code
      metrics.decision(
        kind,
        code === 'CDN_ERR_OVERLOADED'
          ? 'overloaded'
          : code === 'CDN_ERR_NO_HEALTHY_EDGE'
            ? 'no-edge'
            : 'bad-request',
      )
      throw err
    }
  }
  const titleParam = (v: unknown) => assertTitle(v)

  app.get<{ Params: { title: string } }>('/play/:title/master.m3u8', async (req, reply) => {
    const title = titleParam(req.params.title)
    const d = decide('redirect', req, title, 1)
    const edge = d.ranked[0]!.edge
    // Not the preferred edge because of its health: the edge counts why, on every request of
    // the session, as the reason opens the path relative URIs inherit (src/http/steered.ts).
    const reason = decider.steeredReason(d, title)
    const prefix = `${reason ? steeredPrefix(reason) : ''}${decider.tokenPrefix(title, d.client)}`
    return reply
      .code(302)
      .header('cache-control', 'no-store')
      .header('x-steering-edge', edge.id)
      .header('location', decider.masterUrl(edge.url, title, prefix))
      .send()
  })

  app.get<{ Querystring: Q }>('/steer', async (req, reply) => {
    const title = titleParam(req.query.title)
    const d = decide('list', req, title)
    const prefix = decider.tokenPrefix(title, d.client)
    reply.header('cache-control', 'no-store')
    return {
      title,
      edges: d.ranked.map((r) => ({
        id: r.edge.id,
        url: decider.masterUrl(r.edge.url, title, prefix),
        distanceKm: round(r.distanceKm),
        load: round(r.edge.load, 3),
        site: r.edge.site,
        reason: r.reason,
      })),
      ttl: config.steerTtlSec,
      location: { ...d.located.location, source: d.located.source },
      failStatic: d.view.failStatic,
    }
  })

  app.get<{ Params: { title: string }; Querystring: Q }>('/cs/:title/master.m3u8', async (req, reply) => {
    const title = titleParam(req.params.title)
    const d = decide('cs-master', req, title, config.pathways)
    const prefix = decider.tokenPrefix(title, d.client)
    // Steering fetches the master itself: its own token is not bound to the client's network.
    const ownPrefix = decider.tokenPrefix(title)
    const pathways = d.ranked.map((r) => ({ id: r.edge.id, base: r.edge.url }))
    const failed: typeof pathways = []
    let lastErr: unknown
    // The master comes from the best candidate that answers in time; the others are only
    // Pathways. A missing title or a master that is not one is not asked of the next.
    for (const p of pathways.slice(0, 2)) {
      const url = decider.masterUrl(p.base, title, prefix)
      try {
        const text = await fetchMaster(decider.masterUrl(p.base, title, ownPrefix), p.id, {
          dispatcher: agent,
          deadlineMs: config.csMasterTimeoutMs,
          maxBytes: MAX_MASTER_BYTES,
        })
        // The edge that answered is the initial Pathway; one that failed goes after the
        // others, here and (carried in the steering URI) in every steering manifest.
        const order = [p, ...pathways.filter((o) => o !== p && !failed.includes(o)), ...failed]
        const ids = order.map((o) => o.id).join(',')
        const demoted = failed.length ? `&failed=${failed.map((o) => o.id).join(',')}` : ''
        // The master's Pathways ride in the steering URI: /cs/steer names no other (see there).
        const serverUri = `/cs/steer?title=${title}&pathways=${ids}${demoted}${overrideParams(req.query)}`
        const body = steeringMaster(text, url, p.base, order, serverUri)
        return reply
          .header('content-type', 'application/vnd.apple.mpegurl')
          .header('cache-control', 'no-store')
          .header('x-steering-edge', p.id)
          .send(body)
      } catch (err) {
        lastErr = err
        failed.push(p)
        const code = (err as CdnError).code
        if (code === 'CDN_ERR_PLAYLIST' || code === 'CDN_ERR_NOT_FOUND') break
      }
    }
    metrics.decision('cs-master', 'upstream-error')
    if (lastErr instanceof CdnError) throw lastErr
    throw new CdnError('CDN_ERR_UPSTREAM', `could not fetch the master of ${title} from any candidate edge`, {
      cause: lastErr,
    })
  })

  app.get<{ Querystring: Q }>('/cs/steer', async (req, reply) => {
    const title = titleParam(req.query.title)
    // A master made before its Pathways rode in the URI names none: the best edges, as then.
    const pathways = req.query.pathways === undefined ? undefined : parsePathwayIds(req.query.pathways)
    const failed = req.query.failed === undefined ? [] : parsePathwayIds(req.query.failed, 'failed')
    if (pathways && failed.some((id) => !pathways.includes(id)))
      throw new CdnError('CDN_ERR_BAD_REQUEST', 'failed: names an edge that is not one of the pathways')
    const max = Math.max(config.pathways, config.select.maxResults)
    reply.header('cache-control', 'no-store')
    if (!pathways)
      return steeringManifest(
        config.csTtlSec,
        decide('cs-steer', req, title, max).ranked.map((r) => r.edge.id),
      )
    let ranked: string[] = []
    try {
      ranked = decide('cs-steer', req, title, max).ranked.map((r) => r.edge.id)
    } catch (err) {
      // No edge can take the client: its master's Pathways, all out, in the master's order.
      const code = (err as CdnError).code
      if (code !== 'CDN_ERR_NO_HEALTHY_EDGE' && code !== 'CDN_ERR_OVERLOADED') throw err
    }
    const view = health.view
    const usable = (id: string) => view.edgeOf(id)?.usable === true
    return steeringManifest(config.csTtlSec, pathwayPriority(pathways, ranked, usable, new Set(failed)))
  })

  app.get('/edges', async (req, reply) => {
    const view = health.view
    const live = health.edges
    reply.header('cache-control', 'no-store')
    // The parents' and the origin's addresses, errors and /status (the origin's names its store)
    // are internal: with --metrics-token, shown only to a request bearing it.
    const inside = config.metricsToken === undefined || bears(req.headers.authorization, config.metricsToken)
    return {
      failStatic: view.failStatic,
      failStaticSince: view.failStaticSince === null ? null : new Date(view.failStaticSince).toISOString(),
      inRotation: view.usableCount,
      rounds: view.rounds,
      checkIntervalMs: config.checkIntervalMs,
      loadHigh: config.loadHigh,
      loadLow: config.loadLow,
      queueDelayHigh: config.queueDelayHigh,
      edges: health.configs.map((e, i) => {
        const h = live[i]!
        const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString())
        return {
          id: e.id,
          url: e.url,
          site: e.site,
          cluster: e.cluster ?? null,
          lat: e.lat,
          lon: e.lon,
          capacityBytesPerSec: e.capacityBytesPerSec,
          weight: e.weight,
          state: h.state,
          overloaded: h.overloaded,
          inRotation: view.edges[i]!.usable,
          load: round(h.load, 4),
          why: h.why,
          lastCheck: iso(h.lastCheckAt),
          lastOk: iso(h.lastOkAt),
          changedAt: iso(h.changedAt),
          latencyMs: h.lastLatencyMs,
          queueDelayMs: h.queueDelayMs === null ? null : round(h.queueDelayMs, 1),
          consecutiveFailures: h.consecutiveFailures,
          consecutiveSuccesses: h.consecutiveSuccesses,
          lastError: h.lastError,
          status: h.status,
        }
      }),
      // The delivery tree above the edges: same health record, never steered to.
      upstreams: watched.map((n, i) => {
        const h = deps.upstreams.edges[i]!
        const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString())
        const node = {
          id: n.id,
          role: n.role,
          site: n.site ?? null,
          lat: n.lat ?? null,
          lon: n.lon ?? null,
          upstream: n.upstream ?? null,
          serves: n.serves,
          state: h.state,
          lastCheck: iso(h.lastCheckAt),
          lastOk: iso(h.lastOkAt),
          changedAt: iso(h.changedAt),
          latencyMs: h.lastLatencyMs,
        }
        if (!inside) return { ...node, status: publicFigures(h.status) }
        return { ...node, url: n.url, why: h.why, lastError: h.lastError, status: h.status }
      }),
    }
  })

  app.get('/regions', async () => ({
    regions: [...decider.regions.values()].map((r) => ({
      name: r.name,
      lat: r.lat,
      lon: r.lon,
      kind: r.kind,
    })),
    default: config.defaultLocation,
  }))
}

/** The figures of a parent's or the origin's /status that say nothing of where it is or stores. */
const PUBLIC_FIGURES = [
  'uptimeSec',
  'activeConnections',
  'requestsPerSec',
  'egressBytesPerSec',
  'bytesServed',
  'hitRatio',
  'hits',
  'tiers',
] as const

function publicFigures(status: EdgeStatus | null): Partial<EdgeStatus> | null {
  if (!status) return null
  const out: Record<string, unknown> = {}
  for (const k of PUBLIC_FIGURES) if (status[k] !== undefined) out[k] = status[k]
  return out as Partial<EdgeStatus>
}
