/**
 * Where the pages learn what exists. Titles come from, in order and merged: the page's
 * ?titles= parameter (the demo prints such a link), steering's GET /titles if it has one,
 * and the titles the edges report holding in their /status (via steering's GET /edges).
 * Regions come from steering's GET /regions.
 */
async function json(url) {
  try {
    const res = await fetch(url, { cache: 'no-store' })
    return res.ok ? await res.json() : null
  } catch {
    return null
  }
}

function idsOf(body) {
  const list = Array.isArray(body) ? body : (body?.titles ?? [])
  return list
    .map((t) => (typeof t === 'string' ? t : (t?.title ?? t?.id)))
    .filter((t) => typeof t === 'string')
}

export async function loadTitles(params) {
  const out = new Set(
    (params.get('titles') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  )
  const [own, edges] = await Promise.all([json('/titles'), json('/edges')])
  for (const t of idsOf(own)) out.add(t)
  for (const e of edges?.edges ?? []) for (const t of e.status?.titles ?? []) out.add(t)
  return [...out]
}

export async function loadRegions() {
  const body = await json('/regions')
  return { regions: body?.regions ?? [], default: body?.default ?? null }
}

export async function loadEdges() {
  return json('/edges')
}
