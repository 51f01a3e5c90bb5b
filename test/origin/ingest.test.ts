/**
 * Ingest as a whole: corrupt, truncated and damaged sources fail with ffmpeg's reason and
 * publish nothing, a re-ingest makes a new version with the old still servable, MPEG-TS works,
 * and ffmpeg as an HLS client decodes every rendition straight from a running origin.
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import t from 'tap'
import { fixtureFfmpeg } from '../../fixtures/media.js'
import { prng } from '../../fixtures/prng.js'
import { ContentStore } from '../../origin/store/content-store.js'
import { ingest } from '../../origin/transcode/ingest.js'
import { parseMasterPlaylist, parseMediaPlaylist } from '../../src/hls/playlist.js'
import { corruptSource, decodeAll, sampleSource } from '../helpers/media.js'
import { ingestedStore, startOrigin, tempDir } from '../helpers/origin.js'

async function listing(dir: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) await walk(p)
      else out.push(`${relative(dir, p)}:${(await stat(p)).size}`)
    }
  }
  await walk(dir)
  return out.sort()
}

const small = { seconds: 6, width: 426, height: 240 }

t.test("a corrupt source fails with ffmpeg's reason and leaves the store untouched", async (t) => {
  const store = await ingestedStore(t, { titles: [{ id: 'keep', seconds: 10 }] })
  const before = await listing(store)
  const bad = await corruptSource(await tempDir(t))
  await t.rejects(ingest(bad, { title: 'keep', store, ffmpeg: fixtureFfmpeg() }), {
    code: 'CDN_ERR_BAD_SOURCE',
    message: /Invalid data found when processing input|moov atom not found/,
  })
  await t.rejects(ingest(bad, { title: 'fresh', store, ffmpeg: fixtureFfmpeg() }), {
    code: 'CDN_ERR_BAD_SOURCE',
  })
  t.same(await listing(store), before, 'no file added, removed or changed')
})

// ffmpeg's reason for a damaged source: its demuxer, parser or decoder lines, or its own verdict.
const FFMPEG_REASON = /is corrupt: .*(\[(h264|aac|NULL|mov[^\]]*)\]|corrupt|Invalid data|partial file)/

t.test("a truncated source fails with ffmpeg's reason and publishes nothing", async (t) => {
  const store = await ingestedStore(t, { titles: [{ id: 'keep', seconds: 10 }] })
  const before = await listing(store)
  const src = await readFile(await sampleSource({ seconds: 10, width: 854, height: 480 }))
  const cut = join(await tempDir(t), 'cut.mp4')
  // faststart puts the index first: the header promises 10 s, the data stops near 3 s.
  await writeFile(cut, src.subarray(0, Math.floor(src.length * 0.3)))
  await t.rejects(ingest(cut, { title: 'keep', store, ffmpeg: fixtureFfmpeg() }), {
    code: 'CDN_ERR_BAD_SOURCE',
    message: FFMPEG_REASON,
  })
  t.same(await listing(store), before, 'no file added, removed or changed')
})

t.test('a source damaged in the middle fails instead of publishing concealed pictures', async (t) => {
  const root = join(await tempDir(t), 'store')
  const src = await readFile(await sampleSource(small))
  const random = prng(7)
  // The index and the first seconds stay intact: ffprobe reads it, ffmpeg decodes into garbage.
  const from = Math.floor(src.length * 0.4)
  for (let i = from; i < from + Math.floor(src.length * 0.2); i++) src[i] = Math.floor(random() * 256)
  const damaged = join(await tempDir(t), 'damaged.mp4')
  await writeFile(damaged, src)
  await t.rejects(ingest(damaged, { title: 'damaged', store: root, ffmpeg: fixtureFfmpeg() }), {
    code: 'CDN_ERR_BAD_SOURCE',
    message: FFMPEG_REASON,
  })
  t.same(await readdir(join(root, 'titles')), [], 'nothing published')
  t.same(await readdir(join(root, 'staging')), [], 'staging is empty')
})

t.test('an encode that fails on a sound source stays CDN_ERR_TRANSCODE, with its reason', async (t) => {
  const root = join(await tempDir(t), 'store')
  const source = await sampleSource(small)
  await t.rejects(
    ingest(source, { title: 'nopreset', store: root, preset: 'no-such-preset', ffmpeg: fixtureFfmpeg() }),
    { code: 'CDN_ERR_TRANSCODE', message: /^ffmpeg failed: .*encoder/ },
  )
  t.same(await readdir(join(root, 'titles')), [], 'nothing published')
})

t.test('a publish whose pointer cannot be switched leaves no version behind', async (t) => {
  const root = join(await tempDir(t), 'store')
  await new ContentStore(root).init()
  // The encode, the validation and the move into titles/ succeed; the catalogue write cannot.
  await mkdir(join(root, 'titles', 'broken'))
  await writeFile(join(root, 'titles', 'broken', 'title.json'), '{ not json')
  const before = await listing(root)
  await t.rejects(
    ingest(await sampleSource(small), { title: 'broken', store: root, ffmpeg: fixtureFfmpeg() }),
    {
      code: 'CDN_ERR_DISK',
    },
  )
  t.same(await listing(root), before, 'no version directory left in titles/broken, nothing in staging')
})

t.test('a re-ingest makes a new version; the master switches; the old stays servable', async (t) => {
  const root = join(await tempDir(t), 'store')
  const store = await new ContentStore(root).init()
  const source = await sampleSource(small)
  const first = await ingest(source, { title: 'show', store, ffmpeg: fixtureFfmpeg() })
  const origin = await startOrigin(t, { store: root })
  const m1 = parseMasterPlaylist(await (await fetch(`${origin.url}/vod/show/master.m3u8`)).text())
  t.match(m1.variants[0]!.uri, new RegExp(`^${first.version.id}/240p/`))

  const second = await ingest(source, { title: 'show', store, ffmpeg: fixtureFfmpeg() })
  t.not(second.version.id, first.version.id)
  const m2 = parseMasterPlaylist(await (await fetch(`${origin.url}/vod/show/master.m3u8`)).text())
  t.match(m2.variants[0]!.uri, new RegExp(`^${second.version.id}/240p/`), 'master names the new version')

  const oldIndex = await fetch(`${origin.url}/vod/show/${first.version.id}/240p/index.m3u8`)
  t.equal(oldIndex.status, 200, 'old version playlist still served')
  const seg = parseMediaPlaylist(await oldIndex.text()).segments[0]!.uri
  const oldSeg = await fetch(`${origin.url}/vod/show/${first.version.id}/240p/${seg}`)
  t.equal(oldSeg.status, 200, 'old version segment still served')
  await oldSeg.arrayBuffer()
  const cat = (await (await fetch(`${origin.url}/titles/show`)).json()) as {
    current: string
    versions: unknown[]
  }
  t.equal(cat.current, second.version.id)
  t.equal(cat.versions.length, 2)
  t.same(await readdir(join(root, 'staging')), [], 'staging is empty')
})

t.test('MPEG-TS segments on request', async (t) => {
  const root = join(await tempDir(t), 'store')
  const r = await ingest(await sampleSource(small), {
    title: 'legacy',
    store: root,
    format: 'ts',
    segmentSeconds: 2,
    ffmpeg: fixtureFfmpeg(),
  })
  const origin = await startOrigin(t, { store: root })
  const idx = await (await fetch(`${origin.url}/vod/legacy/${r.version.id}/240p/index.m3u8`)).text()
  const media = parseMediaPlaylist(idx)
  t.equal(media.mapUri, undefined, 'no EXT-X-MAP for TS')
  t.equal(media.targetDuration, 2)
  t.match(media.segments[0]!.uri, /^seg-\d{5}\.ts$/)
  const seg = await fetch(`${origin.url}/vod/legacy/${r.version.id}/240p/${media.segments[0]!.uri}`)
  t.equal(seg.headers.get('content-type'), 'video/mp2t')
  await seg.arrayBuffer()
  t.equal(await decodeAll(`${origin.url}/vod/legacy/master.m3u8`), '', 'ffmpeg decodes the TS title cleanly')
})

t.test('ffmpeg, as an HLS client, decodes every rendition from a running origin', async (t) => {
  const store = await ingestedStore(t, { titles: [{ id: 'clip', seconds: 10 }] })
  const origin = await startOrigin(t, { store })
  const master = parseMasterPlaylist(await (await fetch(`${origin.url}/vod/clip/master.m3u8`)).text())
  t.equal(master.variants.length, 3)
  // The hls demuxer exposes each variant as a program; -map 0 decodes all of their streams.
  const stderr = await decodeAll(`${origin.url}/vod/clip/master.m3u8`)
  t.equal(stderr.trim(), '', 'no decode errors')
  const metrics = await (await fetch(`${origin.url}/metrics`)).text()
  // ffmpeg asks for `Range: bytes=0-`, so count 200s and 206s.
  const re = /cdn_origin_requests_total\{route="\/vod\/\*",method="GET",status="20[06]"\} (\d+)/g
  const served = [...metrics.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0)
  // master + per rendition: index, init, 3 segments.
  t.ok(served >= 1 + 3 * 5, `every rendition was fetched (${served} objects)`)
})
