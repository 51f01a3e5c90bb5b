/**
 * Runs once before the suite (package.json "tap" → "before"), before any test file's timeout
 * starts: makes the generated media the tests share, so no test spends its time transcoding and
 * no two make the same file. Each item is kept under .cache/ named by the transcoder's code and
 * its parameters (fixtures/cache.ts); what an older transcoder made is removed first. A test run
 * on its own makes what it needs on first use, the same way.
 */
import { pruneStale } from '../../fixtures/cache.js'
import { fixturesCacheDir, sampleSource } from '../../fixtures/media.js'
import { demoTitles, e2eCacheDir } from '../e2e/demo-helpers.js'
import { cachedIngest } from './origin.js'

const started = performance.now()
const removed = [...(await pruneStale(fixturesCacheDir())), ...(await pruneStale(e2eCacheDir))]
// The ingest most edge, steering, prefill and origin tests copy; the small sources origin tests ingest.
await cachedIngest({ seconds: 10 })
await sampleSource({ seconds: 6, width: 426, height: 240 })
// The demo's sample titles, for the npm start and browser tests (made by the built origin).
await demoTitles()
process.stderr.write(
  `# generated media ready in ${((performance.now() - started) / 1000).toFixed(1)} s` +
    (removed.length ? ` (removed ${removed.length} made by older code)` : '') +
    '\n',
)
