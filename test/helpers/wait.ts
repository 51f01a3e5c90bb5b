/**
 * Waiting on an event that has no promise of its own: a counter or metric reaching a value, a
 * file appearing, another process changing state. `until` checks `ready` again every few
 * milliseconds until it holds. There is no deadline: tap's per-file timeout bounds a wait that
 * never ends, so a slow or busy machine makes a test slower, never wrong. The interval is how
 * often to look, not a guess at how long something takes.
 */
import { setTimeout as pause } from 'node:timers/promises'

export async function until(ready: () => boolean | Promise<boolean>, everyMs = 10): Promise<void> {
  while (!(await ready())) await pause(everyMs)
}

/** The sum of every series of one metric in a Prometheus text exposition (0 when absent). */
export function metricSum(text: string, name: string, labels?: Record<string, string>): number {
  let n = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    if (labels && !Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue
    n += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return n
}

/**
 * GETs `url` (a /metrics endpoint) and sums one metric, as metricSum. A GET is idempotent, so
 * one that met a pooled connection the server had just closed (its keep-alive idle time ran out
 * while the event loop was busy) is sent again, as browsers do.
 */
export async function metricAt(url: string, name: string, labels?: Record<string, string>): Promise<number> {
  let text: string
  try {
    text = await (await fetch(url)).text()
  } catch (err) {
    const code = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code
    if (code !== 'ECONNRESET' && code !== 'UND_ERR_SOCKET' && code !== 'EPIPE') throw err
    text = await (await fetch(url)).text()
  }
  return metricSum(text, name, labels)
}
