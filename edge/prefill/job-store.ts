/**
 * Jobs on disk under {cacheDir}/prefill/: `{id}.json` (the record, rewritten as it moves) and
 * `{id}.plan.json` (written once after planning). Every write is atomic (src/fs/atomic.ts): a
 * crash leaves the old or the new file, never half of one. Unreadable files are reported and
 * skipped, never fatal.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { CdnError } from '../../src/errors.js'
import { isTempPath, writeFileAtomic } from '../../src/fs/atomic.js'
import { KeyedQueue } from '../../src/keyed-queue.js'
import type { Plan } from './fit.js'
import type { JobRecord } from './model.js'

const ID_RE = /^[a-z0-9-]{1,64}$/

export class JobStore {
  readonly dir: string
  /** Writes of one file run in call order, so an older snapshot never lands last. */
  private readonly chains = new KeyedQueue()

  constructor(cacheDir: string) {
    this.dir = join(cacheDir, 'prefill')
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true })
  }

  save(record: JobRecord): Promise<void> {
    return this.write(`${record.id}.json`, record)
  }

  savePlan(id: string, plan: Plan): Promise<void> {
    return this.write(`${id}.plan.json`, plan)
  }

  async loadPlan(id: string): Promise<Plan | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir, `${id}.plan.json`), 'utf8')) as Plan
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new CdnError('CDN_ERR_DISK', `prefill plan ${id} is unreadable`, { cause: err })
    }
  }

  /** Every readable job record; `problems` lists the files skipped and why. */
  async loadAll(): Promise<{ records: JobRecord[]; problems: string[] }> {
    const records: JobRecord[] = []
    const problems: string[] = []
    for (const name of await readdir(this.dir)) {
      if (isTempPath(name) || name.endsWith('.tmp')) {
        await rm(join(this.dir, name), { force: true })
        continue
      }
      const m = /^([a-z0-9-]+)\.json$/.exec(name)
      if (!m) continue
      try {
        const r = JSON.parse(await readFile(join(this.dir, name), 'utf8')) as JobRecord
        if (r.id !== m[1] || !Array.isArray(r.titles)) throw new Error('not a prefill job record')
        records.push(r)
      } catch (err) {
        problems.push(`${name}: ${(err as Error).message}`)
      }
    }
    records.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))
    return { records, problems }
  }

  async remove(id: string): Promise<void> {
    if (!ID_RE.test(id)) return
    await rm(join(this.dir, `${id}.json`), { force: true })
    await rm(join(this.dir, `${id}.plan.json`), { force: true })
  }

  private write(name: string, value: unknown): Promise<void> {
    const text = JSON.stringify(value)
    return this.chains.run(name, () => writeFileAtomic(join(this.dir, name), text))
  }
}
