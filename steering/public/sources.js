/**
 * Where the pages learn what exists. Titles come from, merged: the page's ?titles= parameter
 * (the demo prints such a link) and the titles the edges and the origin report in their
 * /status (via steering's GET /edges; steering has no catalogue of its own).
 * Regions come from steering's GET /regions. `base` is steering's origin ('' when steering
 * serves the page itself).
 */
async function json(url) {
  try {
    const res = await fetch(url, { cache: 'no-store' })
    return res.ok ? await res.json() : null
  } catch {
    return null
  }
}

export async function loadTitles(params, base = '') {
  const out = new Set(
    (params.get('titles') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  )
  const doc = await json(`${base}/edges`)
  for (const e of [...(doc?.edges ?? []), ...(doc?.upstreams ?? [])])
    for (const t of e.status?.titles ?? []) out.add(t)
  return [...out]
}

export async function loadRegions(base = '') {
  const body = await json(`${base}/regions`)
  return { regions: body?.regions ?? [], default: body?.default ?? null }
}

export async function loadEdges(base = '') {
  return json(`${base}/edges`)
}

/**
 * Where steering is: the page's own origin, or ?steering=URL when the page lives elsewhere
 * (any site can embed the player; steering answers every origin).
 */
export function steeringBase(params) {
  const given = params.get('steering')
  if (!given) return ''
  try {
    const u = new URL(given)
    if (u.protocol === 'http:' || u.protocol === 'https:') return u.origin
  } catch {
    // Not a URL: fall back to the page's own origin.
  }
  return ''
}
