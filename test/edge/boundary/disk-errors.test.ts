/** Disk errors are logged (rate-limited, errno code and the file's role, never its path), not only counted. */
import { readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { edgeConfig } from '../../../edge/config/validate.js'
import { startEdge } from '../../../edge/main.js'
import { tempDir } from '../../helpers/edge.js'
import { IMMUTABLE, pattern, startUpstream } from '../upstream-server.js'

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile() && !f.endsWith('.json') && !f.endsWith('edge.lock'))
}

t.test(
  'a corrupt body on disk is logged once per interval with its code and role, never its path',
  async (t) => {
    const body = pattern(100_000, 5)
    const up = await startUpstream(t, {
      '/vod/c/v1/720p/*': (_req, reply) => reply.header('cache-control', IMMUTABLE).send(body),
    })
    const cacheDir = tempDir(t)
    const lines: Record<string, unknown>[] = []
    const raw: string[] = []
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) {
          raw.push(l)
          lines.push(JSON.parse(l) as Record<string, unknown>)
        }
        done()
      },
    })
    const config = edgeConfig({
      upstream: [up.url],
      cacheDir,
      memorySize: 0,
      port: 0,
      host: '127.0.0.1',
      logLevel: 'warn',
    })
    const { app, url } = await startEdge(config, { logger: { level: 'warn', stream } })
    t.teardown(() => app.close())

    const corruptAndRead = async (path: string) => {
      t.equal((await fetch(url + path).then((r) => r.arrayBuffer())).byteLength, body.length)
      await app.edge.flights.settled('c')
      const before = new Set(files(cacheDir))
      t.ok(before.size > 0, 'the object is on disk')
      for (const f of before) {
        const bytes = Buffer.from(pattern(100_000, 9))
        writeFileSync(f, Buffer.concat([bytes, Buffer.alloc(statSync(f).size - bytes.length)]))
      }
      const again = await fetch(url + path)
      t.ok(Buffer.from(await again.arrayBuffer()).equals(body), 'the corrupt copy is never served')
    }
    await corruptAndRead('/vod/c/v1/720p/seg-1.m4s')
    const logged = lines.filter((l) => l.msg?.toString().startsWith('disk error'))
    t.equal(logged.length, 1, 'one line')
    t.match(logged[0], { code: 'ECHECKSUM', role: 'body', count: 1, level: 40 })
    t.notOk(
      raw.some((l) => l.includes(cacheDir)),
      'no log line names the cache directory',
    )
    await corruptAndRead('/vod/c/v1/720p/seg-2.m4s')
    t.equal(
      lines.filter((l) => l.msg?.toString().startsWith('disk error')).length,
      1,
      'a second error of the same kind within the interval is counted, not logged',
    )
    const metrics = await fetch(`${url}/metrics`).then((r) => r.text())
    t.match(metrics, /cdn_edge_disk_errors_total\{code="ECHECKSUM"\} 2/)
  },
)
