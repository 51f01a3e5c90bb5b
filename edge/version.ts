/**
 * The version the edge reports on /status (and a cluster's primary on its own): the nearest
 * package.json above this file, whether it runs from source or from dist/.
 */
import { readFileSync } from 'node:fs'

export function packageVersion(): string {
  let dir = new URL('.', import.meta.url)
  for (let i = 0; i < 4; i++) {
    try {
      return (JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { version: string }).version
    } catch {
      dir = new URL('..', dir)
    }
  }
  return '0.0.0'
}
