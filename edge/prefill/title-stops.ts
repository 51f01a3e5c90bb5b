/**
 * The titles of a running job an operator purged (DELETE /admin/cache/vod/{title}) and, per
 * title, a signal that ends its waits: a purge wins over the job filling the title, so a fill
 * paused for the window or the byte budget must not wake hours later and fetch the title again.
 * Bounded by the job's titles.
 */
export class TitleStops {
  private readonly purged = new Set<string>()
  private readonly stops = new Map<string, { controller: AbortController; signal: AbortSignal }>()

  constructor(
    private readonly titles: ReadonlySet<string>,
    /** The job's work: its end ends every title's waits too. */
    private readonly work: AbortSignal,
  ) {}

  /** Records a purge of `title`; false when the job does not name it. */
  purge(title: string): boolean {
    if (!this.titles.has(title)) return false
    this.purged.add(title)
    this.stops.get(title)?.controller.abort('purged')
    return true
  }

  has(title: string): boolean {
    return this.purged.has(title)
  }

  /** Aborted once the title is purged or the job's work ends (one per title, kept). */
  signal(title: string): AbortSignal {
    let s = this.stops.get(title)
    if (!s) {
      const controller = new AbortController()
      if (this.purged.has(title)) controller.abort('purged')
      s = { controller, signal: AbortSignal.any([this.work, controller.signal]) }
      this.stops.set(title, s)
    }
    return s.signal
  }
}
