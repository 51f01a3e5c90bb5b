/** Where the repository is, found from a module URL whether it runs from dist/ or from source. */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export function repoRoot(moduleUrl: string): string {
  let dir = dirname(fileURLToPath(moduleUrl))
  // Bounded by the depth of the path: dirname of "/" is "/".
  while (!existsSync(join(dir, 'package.json')) || dir.endsWith('/dist')) {
    const up = dirname(dir)
    if (up === dir) throw new Error(`no package.json above ${moduleUrl}`)
    dir = up
  }
  return dir
}
