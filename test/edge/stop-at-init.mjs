/**
 * A preload (NODE_OPTIONS=--import) for drain.test.ts: a cluster worker that gets its init while
 * the file CDN_TEST_STOP_AT_INIT names exists stops itself (SIGSTOP) before it reads it, so the
 * test holds it between its init and its listening. Does nothing anywhere else.
 */
import { existsSync } from 'node:fs'
import process from 'node:process'

const marker = process.env.CDN_TEST_STOP_AT_INIT
if (process.send && marker)
  process.on('message', function stop(m) {
    if (m?.type !== 'init' || !existsSync(marker)) return
    process.off('message', stop)
    process.kill(process.pid, 'SIGSTOP')
  })
