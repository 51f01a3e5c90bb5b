/**
 * What the demo needs to read from the nodes it started: which titles the origin's catalogue
 * holds, and starting a prefill on an edge. Tolerant of the catalogue's shape (a list, or an
 * object with a list; entries as strings or objects with `title`/`id`) so the demo keeps
 * working while the origin's API grows.
 */
import { CdnError } from '../../errors.js'

export function titlesIn(body: unknown): string[] {
  const list = Array.isArray(body)
    ? body
    : body && typeof body === 'object'
      ? ((body as Record<string, unknown>).titles ?? (body as Record<string, unknown>).items)
      : undefined
  if (!Array.isArray(list)) return []
  const out: string[] = []
  for (const e of list) {
    if (typeof e === 'string') out.push(e)
    else if (e && typeof e === 'object') {
      const o = e as Record<string, unknown>
      const id = o.title ?? o.id ?? o.name
      // A title whose ingest is still running has no servable version yet.
      const versions = o.versions
      const servable = !Array.isArray(versions) || versions.length > 0
      if (typeof id === 'string' && servable && o.current !== null) out.push(id)
    }
  }
  return out
}

export type PrefillOutcome = { kind: 'started'; id: string } | { kind: 'unavailable'; why: string }

/** POST /admin/prefill on one edge. A 404/405 means this edge build has no prefill: not an error. */
export async function startPrefill(
  edgeUrl: string,
  token: string,
  titles: readonly string[],
  signal: AbortSignal,
): Promise<PrefillOutcome> {
  let res: Response
  try {
    res = await fetch(`${edgeUrl}/admin/prefill`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ titles }),
      signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]),
    })
  } catch (err) {
    throw new CdnError('CDN_ERR_UPSTREAM', `prefill on ${edgeUrl}: ${(err as Error).message}`, { cause: err })
  }
  const text = await res.text()
  if (res.status === 404 || res.status === 405) return { kind: 'unavailable', why: `HTTP ${res.status}` }
  if (!res.ok)
    throw new CdnError('CDN_ERR_UPSTREAM', `prefill on ${edgeUrl}: HTTP ${res.status} ${text.slice(0, 200)}`)
  let id = '?'
  try {
    id = String((JSON.parse(text) as { id?: unknown }).id ?? '?')
  } catch {
    // A 2xx without a JSON body still started the job.
  }
  return { kind: 'started', id }
}
