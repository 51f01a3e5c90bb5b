/**
 * The demo player. Three ways through steering, chosen with ?via= (or the form):
 *   steer  (default) asks GET /steer for a ranked list of edges, plays the first with hls.js
 *          and fails over down the list itself when an edge dies (failover-loader.js);
 *   cs     loads steering's HLS Content Steering master (/cs/{title}/master.m3u8): hls.js polls
 *          the steering manifest and moves between Pathways (edges) on its own;
 *   play   loads /play/{title}/master.m3u8, which redirects to one edge.
 * It shows what the CDN is doing: which edge serves, its X-Cache answer, the rendition and
 * bitrate, the buffer, and every rendition switch. hls.js comes from steering (/assets/hls.js):
 * no outside CDN.
 *
 * The page may live on any origin: ?steering=URL says where steering is (default: this page's
 * origin); steering answers every origin (CORS).
 *
 * Query parameters: ?title=T (preselect), &region=R, &via=steer|cs|play, &play=1 (start at
 * once), &titles=a,b (offer these titles), &buffer=SECONDS (forward buffer), &steering=URL.
 *
 * Everything is on `window.player` for tests and the curious: { hls, via, book, edge, events,
 * switches, fragments, steeringManifests, play(title, region, via), setLevel(i), setCap(i) }.
 */
import { EdgeBook } from './edge-book.js'
import { failoverLoaderClass } from './failover-loader.js'
import { loadEdges, loadRegions, loadTitles, steeringBase } from './sources.js'
import { describeError } from './words.js'

const Hls = window.Hls
const $ = (id) => document.getElementById(id)
const params = new URLSearchParams(location.search)
const video = $('video')
const base = steeringBase(params)
const VIA = new Set(['steer', 'cs', 'play'])
const MAX_LOG = 200
/** Full restarts after fatal network errors, per play(): a bound, so a broken title cannot loop. */
const MAX_RESTARTS = 5
let restarts = 0

const mbps = (bps) => (bps ? `${(bps / 1e6).toFixed(bps < 1e7 ? 2 : 1)} Mb/s` : '–')
const clock = () => new Date().toLocaleTimeString([], { hour12: false })

function policy(ttfbMs, loadMs, retries) {
  return {
    default: {
      maxTimeToFirstByteMs: ttfbMs,
      maxLoadTimeMs: loadMs,
      timeoutRetry: { maxNumRetry: retries, retryDelayMs: 0, maxRetryDelayMs: 0 },
      errorRetry: { maxNumRetry: retries, retryDelayMs: 250, maxRetryDelayMs: 2000 },
    },
  }
}

const player = {
  hls: null,
  book: null,
  title: null,
  region: '',
  via: 'steer',
  /** The edge in use when hls.js picks it (cs: the Pathway; play: where /play redirected). */
  route: null,
  steeringManifests: [],
  events: [],
  switches: [],
  fragments: [],
  get edge() {
    return this.via === 'steer' ? (this.book?.current ?? null) : this.route
  },
  play,
  setLevel(i) {
    if (!this.hls) return
    this.hls.currentLevel = i
    log('control', i < 0 ? 'automatic rendition' : `rendition forced to ${levelName(this.hls.levels[i])}`)
    renderLevels()
  },
  setCap(i) {
    if (!this.hls) return
    this.hls.autoLevelCapping = i
    log('control', i < 0 ? 'bandwidth cap removed' : `capped at ${levelName(this.hls.levels[i])}`)
  },
}
window.player = player

function log(type, text, extra = {}) {
  const e = { at: Date.now(), t: Number(video.currentTime.toFixed(2)), type, text, ...extra }
  player.events.push(e)
  if (player.events.length > MAX_LOG) player.events.shift()
  const li = document.createElement('li')
  li.className = `ev-${type}`
  li.innerHTML = `<time></time> <b></b> <span></span>`
  li.children[0].textContent = clock()
  li.children[1].textContent = type
  li.children[2].textContent = text
  $('events').prepend(li)
  while ($('events').children.length > MAX_LOG) $('events').lastChild.remove()
}

function levelName(l) {
  if (!l) return '?'
  return `${l.height ? `${l.height}p` : l.name || '?'} · ${mbps(l.bitrate)}`
}

function steerFor(title, region) {
  return async () => {
    const q = new URLSearchParams({ title })
    if (region) q.set('region', region)
    const res = await fetch(`${base}/steer?${q}`, { cache: 'no-store' })
    const body = await res.json().catch(() => ({}))
    if (!res.ok) throw new Error(body?.error?.message ?? `steering answered ${res.status}`)
    return body.edges ?? []
  }
}

function onEdgeChange(change) {
  renderRanked()
  if (change.kind === 'steer') log('steer', `steering chose ${change.to.id} (${change.to.distanceKm} km)`)
  else log('failover', `${change.from?.id ?? '?'} failed (${change.why}); now ${change.to.id}`)
  renderEdge()
}

async function play(title, region = '', via = 'steer') {
  player.hls?.destroy()
  player.hls = null
  player.title = title
  player.region = region
  player.via = VIA.has(via) ? via : 'steer'
  player.route = null
  player.book = null
  player.fragments.length = 0
  player.steeringManifests.length = 0
  restarts = 0
  $('message').textContent = ''
  if (!Hls?.isSupported()) {
    $('message').textContent = 'This browser cannot play HLS through Media Source Extensions.'
    return
  }
  if (player.via !== 'steer') {
    const q = region ? `?region=${encodeURIComponent(region)}` : ''
    const path = player.via === 'cs' ? 'cs' : 'play'
    log(
      'steer',
      `${path === 'cs' ? 'content steering' : 'redirect'}: ${base || location.origin}/${path}/${title}/master.m3u8`,
    )
    attach(null, `${base}/${path}/${title}/master.m3u8${q}`, 0)
    return
  }
  const book = new EdgeBook({ steer: steerFor(title, region), onChange: onEdgeChange })
  player.book = book
  try {
    await book.start()
  } catch (err) {
    $('message').textContent = `No edge for "${title}": ${err.message}`
    log('error', err.message)
    return
  }
  attach(book, book.current.url, 0)
}

/** cs/play: the edge in use, from hls.js's Pathway or from the URL the media came from. */
/** Edge ids by origin, from steering's fleet view: names the edge a /play redirect chose. */
const edgeIds = new Map()
loadEdges(base).then((doc) => {
  for (const e of doc?.edges ?? []) edgeIds.set(new URL(e.url).origin, e.id)
})

function routeFrom(hls, url) {
  const pathway = hls.levels[hls.currentLevel]?.pathwayId
  const origin = new URL(url, location.href).origin
  const id =
    player.via === 'cs' && pathway && pathway !== '.'
      ? pathway
      : (edgeIds.get(origin) ?? new URL(url, location.href).host)
  if (player.route?.id === id) return
  const from = player.route?.id
  player.route = { id, url: new URL(url, location.href).origin }
  log(from ? 'failover' : 'steer', from ? `now served by ${id} (was ${from})` : `served by ${id}`)
  renderEdge()
}

function attach(book, url, startPosition) {
  const buffer = Number(params.get('buffer')) || 10
  const hls = new Hls({
    ...(book ? { loader: failoverLoaderClass(Hls, book) } : {}),
    startPosition,
    maxBufferLength: buffer,
    maxMaxBufferLength: buffer * 1.5,
    backBufferLength: 30,
    fragLoadPolicy: policy(4000, 20_000, 2),
    playlistLoadPolicy: policy(3000, 8000, 2),
    manifestLoadPolicy: policy(3000, 8000, 2),
    // CMCD (CTA-5004) on every request, in the query: edges prefetch the next segment it names.
    cmcd: {},
  })
  player.hls = hls
  const E = Hls.Events
  hls.on(E.MANIFEST_PARSED, (_e, d) => {
    log(
      'manifest',
      `${d.levels.length} renditions: ${d.levels.map((l) => l.height && `${l.height}p`).join(', ')}`,
    )
    renderLevels()
    video.play().catch(() => log('info', 'press play to start (autoplay was refused)'))
  })
  hls.on(E.LEVEL_SWITCHED, (_e, d) => {
    const prev = player.switches.at(-1)
    const to = hls.levels[d.level]
    const s = {
      at: Date.now(),
      t: Number(video.currentTime.toFixed(2)),
      from: prev?.to ?? null,
      to: d.level,
      height: to?.height,
      bitrate: to?.bitrate,
      auto: hls.autoLevelEnabled,
    }
    player.switches.push(s)
    const li = document.createElement('li')
    li.textContent = `${clock()}  ${prev ? levelName(hls.levels[prev.to]) : 'start'} → ${levelName(to)}${s.auto ? ' (auto)' : ' (forced)'}`
    $('switches').prepend(li)
    renderLevels()
  })
  hls.on(E.FRAG_LOADED, (_e, d) => {
    const xhr = d.networkDetails
    const url = xhr?.responseURL || d.frag.url
    if (!book) routeFrom(hls, url)
    const edge = book ? book.edgeOf(url) : player.route
    const headers = typeof xhr?.getAllResponseHeaders === 'function' ? xhr.getAllResponseHeaders() : ''
    const xCache = /^x-cache:\s*(.+)$/im.exec(headers)?.[1]?.trim() ?? null
    player.fragments.push({
      at: Date.now(),
      sn: d.frag.sn,
      level: d.frag.level,
      url,
      edge: edge?.id ?? null,
      xCache,
      bytes: d.frag.stats?.total ?? 0,
    })
    if (player.fragments.length > MAX_LOG) player.fragments.shift()
    $('xcache').textContent = `X-Cache ${xCache ?? '(not exposed)'}`
    $('xcache').dataset.state = xCache ? (/hit/i.test(xCache) ? 'hit' : 'miss') : ''
    $('frags').textContent = `${player.fragments.length} segments`
  })
  hls.on(E.STEERING_MANIFEST_LOADED, (_e, d) => {
    const priority = d.steeringManifest?.['PATHWAY-PRIORITY'] ?? []
    player.steeringManifests.push({ at: Date.now(), priority })
    if (player.steeringManifests.length > MAX_LOG) player.steeringManifests.shift()
    const prev = player.steeringManifests.at(-2)?.priority.join(',')
    if (prev !== priority.join(',')) log('steer', `content steering: pathways ${priority.join(' > ')}`)
  })
  hls.on(E.ERROR, (_e, d) => {
    const words = describeError(d)
    log(d.fatal ? 'fatal' : 'warning', words, { details: d.details })
    if (!d.fatal) return
    if (d.type === Hls.ErrorTypes.MEDIA_ERROR) return hls.recoverMediaError()
    if (d.type !== Hls.ErrorTypes.NETWORK_ERROR || ++restarts > MAX_RESTARTS || !book) {
      $('message').textContent = `Playback stopped: ${words}`
      return
    }
    // The loader already tried the other edges for this request; start over from where we are.
    const pos = video.currentTime
    book.failover(book.current?.url ?? '', d.details).then((moved) => {
      if (moved && player.hls === hls) {
        hls.destroy()
        attach(book, book.current.url, pos)
      } else $('message').textContent = 'Playback stopped: no edge could serve this title.'
    })
  })
  hls.loadSource(url)
  hls.attachMedia(video)
}

/**
 * Browsers only start video by themselves when it is silent, so the page starts muted: say so
 * while it plays muted, with a button that unmutes.
 */
function mutedNotice(v, box) {
  const show = () => {
    box.hidden = !v.muted
  }
  box.querySelector('button').onclick = () => {
    v.muted = false
    log('control', 'sound on')
  }
  v.addEventListener('volumechange', show)
  v.addEventListener('playing', show)
}

function renderEdge() {
  const e = player.edge
  $('edge').textContent = e ? e.id : '–'
  $('edge-detail').textContent = !e
    ? ''
    : e.distanceKm === undefined
      ? player.via === 'cs'
        ? 'a Pathway of content steering'
        : 'where /play redirected'
      : `${e.site ?? ''} · ${e.distanceKm} km away · load ${Math.round((e.load ?? 0) * 100)}%`
}

function renderRanked() {
  const ol = $('ranked')
  ol.replaceChildren()
  const book = player.book
  // Content steering: the Pathway priority of steering's last manifest.
  for (const id of player.via === 'cs' ? (player.steeringManifests.at(-1)?.priority ?? []) : []) {
    const li = document.createElement('li')
    li.textContent = `${id} · a Pathway`
    if (id === player.route?.id) li.className = 'current'
    ol.append(li)
  }
  for (const e of book?.ranked ?? []) {
    const li = document.createElement('li')
    li.textContent = `${e.id} · ${e.site ?? ''} · ${e.distanceKm} km`
    if (e === book.current) li.className = 'current'
    else if (book.isFailed(e)) li.className = 'failed'
    ol.append(li)
  }
}

function renderLevels() {
  const hls = player.hls
  const box = $('levels')
  box.replaceChildren()
  if (!hls) return
  const manual = hls.manualLevel ?? (hls.autoLevelEnabled ? -1 : hls.currentLevel)
  const mk = (i, text) => {
    const b = document.createElement('button')
    b.type = 'button'
    b.textContent = text
    b.dataset.level = String(i)
    if (i === manual || (i === -1 && hls.autoLevelEnabled)) b.className = 'on'
    if (i >= 0 && i === hls.currentLevel) b.classList.add('playing')
    b.onclick = () => player.setLevel(i)
    box.append(b)
  }
  mk(-1, 'Auto')
  hls.levels.forEach((l, i) => {
    mk(i, levelName(l))
  })
  const cap = $('cap')
  if (cap.options.length !== hls.levels.length + 1) {
    cap.replaceChildren(new Option('no cap', '-1'))
    hls.levels.forEach((l, i) => {
      cap.append(new Option(levelName(l), String(i)))
    })
  }
}

function tick() {
  const hls = player.hls
  if (hls) {
    const l = hls.levels[hls.currentLevel]
    $('rendition').textContent = l ? `${l.height}p` : '–'
    $('bitrate').textContent = l ? `${mbps(l.bitrate)}${l.videoCodec ? ` · ${l.videoCodec}` : ''}` : ''
    $('bandwidth').textContent = mbps(hls.bandwidthEstimate)
    let ahead = 0
    for (let i = 0; i < video.buffered.length; i++)
      if (video.buffered.start(i) <= video.currentTime + 0.1 && video.buffered.end(i) > video.currentTime)
        ahead = video.buffered.end(i) - video.currentTime
    $('buffer').textContent = `${ahead.toFixed(1)} s`
    $('buffer-bar').style.width = `${Math.min(100, (ahead / (hls.config.maxMaxBufferLength || 30)) * 100)}%`
  }
  renderRanked()
}

async function init() {
  $('cap').onchange = (e) => player.setCap(Number(e.target.value))
  $('pick').onsubmit = (e) => {
    e.preventDefault()
    const title = $('title').value.trim()
    const region = $('region').value
    const via = $('via').value
    const q = new URLSearchParams(params)
    q.set('title', title)
    q.set('via', via)
    if (region) q.set('region', region)
    else q.delete('region')
    history.replaceState(null, '', `?${q}`)
    play(title, region, via)
  }
  mutedNotice(video, $('muted'))
  const [titles, regions] = await Promise.all([loadTitles(params, base), loadRegions(base)])
  for (const t of titles) $('titles').append(new Option(t, t))
  for (const r of regions.regions)
    $('region').append(new Option(`${r.name} (${r.lat.toFixed(1)}, ${r.lon.toFixed(1)})`, r.name))
  $('title').value = params.get('title') ?? titles[0] ?? ''
  if (params.get('region')) $('region').value = params.get('region')
  if (VIA.has(params.get('via'))) $('via').value = params.get('via')
  if (!titles.length) $('message').textContent = 'No title list available: type a title id.'
  setInterval(tick, 500)
  if (params.get('play') === '1' && $('title').value)
    play($('title').value, $('region').value, $('via').value)
}

init()
