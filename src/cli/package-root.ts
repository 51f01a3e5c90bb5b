/**
 * The package's own directory and version, found from a module's location: the nearest
 * directory above it with a package.json. One rule for every layout the code runs from: the
 * build (dist/src/cli/ under the checkout), an installed package (node_modules/open-cdn/dist/...),
 * and the TypeScript sources the tests load (src/cli/).
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CdnError } from '../errors.js'

/** The nearest directory at or above `dir` holding a package.json. */
export function packageRoot(dir = dirname(fileURLToPath(import.meta.url))): string {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) return d
    if (dirname(d) === d) throw new CdnError('CDN_ERR_INTERNAL', `no package.json above ${dir}`)
  }
}

/** The version in the package's package.json. */
export function packageVersion(dir?: string): string {
  const file = join(packageRoot(dir), 'package.json')
  const { version } = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }
  if (typeof version !== 'string') throw new CdnError('CDN_ERR_INTERNAL', `${file}: no version`)
  return version
}
