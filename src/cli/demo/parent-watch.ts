/**
 * Preloaded into every node `cdn demo` starts (`node --import .../parent-watch.js cli.js ROLE`).
 * Children run in their own process group (so a terminal's Ctrl-C reaches only the demo, which
 * then stops them in order), which also means nothing kills them if the demo itself dies
 * (SIGKILL, a crash). This watch closes that hole: when the parent is gone (our ppid changes
 * to a reaper), the node stops itself the ordinary way, with SIGTERM, and is forced out if
 * that takes too long. The timers are unref'd, so they never keep a node alive.
 */
const parent = process.ppid
const CHECK_MS = 500
const FORCE_AFTER_MS = 10_000

const watch = setInterval(() => {
  if (process.ppid === parent) return
  clearInterval(watch)
  process.stderr.write(`parent-watch: demo supervisor (pid ${parent}) is gone; stopping\n`)
  setTimeout(() => process.exit(1), FORCE_AFTER_MS).unref()
  process.kill(process.pid, 'SIGTERM')
}, CHECK_MS)
watch.unref()
