/**
 * Paths in the repository, the same whether a test runs from its source (test/) or compiled
 * (dist/test/, as `npm test` runs them).
 */
import { join } from 'node:path'
import { repoRoot } from '../../fixtures/cache.js'

/** The repository's root directory. */
export const root = repoRoot()

/** `parts` under the repository's root. */
export function repoPath(...parts: string[]): string {
  return join(root, ...parts)
}

/** The built `cdn` command (`npm run build`). */
export const cli = repoPath('dist/src/cli/main.js')
