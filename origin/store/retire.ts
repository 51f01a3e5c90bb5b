/**
 * Retiring old versions of a title (`cdn origin retire TITLE --keep N --grace 1h`), in two
 * steps so that no reader is cut off:
 * 1. the pointer's versions shrink to the `keep` newest (the current one always kept); the
 *    others move to its `retired` list with the time, and stay servable (an edge may still
 *    hold a master naming them, a player may be half-way through one);
 * 2. a retired version whose grace period has passed is deleted (its manifest first), then
 *    dropped from the list. Run it again later (a cron) to finish what step 1 started.
 * Both pointer changes go through the store's compare-and-swap, so a publish racing a retire
 * is never lost.
 */
import type { TitleEntry } from './content-store.js'
import { CdnError } from '../../src/errors.js'
import { type OriginStore, swapWithRetry, versionsToRetire } from './store.js'

export interface RetireResult {
  /** Versions taken out of the pointer by this run. */
  retired: string[]
  /** Versions deleted by this run (their grace had passed). */
  deleted: string[]
  /** Versions retired and waiting for their grace period. */
  waiting: string[]
}

export async function retireVersions(
  store: OriginStore,
  title: string,
  opts: { keep: number; graceMs: number; now: Date },
): Promise<RetireResult> {
  if (!(await store.readTitle(title))) throw new CdnError('CDN_ERR_NOT_FOUND', `no title ${title}`)
  const at = opts.now.toISOString()
  let retired: string[] = []
  const marked = await swapWithRetry(store, title, (old) => {
    const entry = old as TitleEntry
    retired = versionsToRetire(entry, opts.keep)
    return {
      ...entry,
      versions: entry.versions.filter((v) => !retired.includes(v.id)),
      retired: [...(entry.retired ?? []), ...retired.map((id) => ({ id, retiredAt: at }))],
    }
  })
  const due = (marked.retired ?? [])
    .filter((r) => Date.parse(r.retiredAt) + opts.graceMs <= opts.now.getTime())
    .map((r) => r.id)
  for (const id of due) await store.deleteVersion(title, id)
  const final = due.length
    ? await swapWithRetry(store, title, (old) => ({
        ...(old as TitleEntry),
        retired: ((old as TitleEntry).retired ?? []).filter((r) => !due.includes(r.id)),
      }))
    : marked
  return { retired, deleted: due, waiting: (final.retired ?? []).map((r) => r.id) }
}
